//! Listeners: HTTPS with rustls, an optional plain-HTTP listener that only
//! redirects to HTTPS (`http::https_redirect`), and a graceful shutdown that
//! drains in-flight requests.

use std::{
    future::Future,
    net::{SocketAddr, TcpListener},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use axum::Router;
use axum_server::{
    Handle,
    tls_rustls::{RustlsAcceptor, RustlsConfig},
};
use url::Url;

use crate::{config::Config, http, tls};

/// Largest request head (request line and headers) accepted.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Parallel streams one HTTP/2 connection may open.
const MAX_CONCURRENT_STREAMS: u32 = 100;

/// The bound listeners, ready to serve.
pub struct Server {
    https: TcpListener,
    https_addr: SocketAddr,
    redirect: Option<(TcpListener, SocketAddr)>,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    public_url: Url,
    shutdown_grace: Duration,
    timeouts: ConnectionTimeouts,
}

/// How long a connection may take at each step before it is closed, so
/// that slow or silent clients (slowloris) cannot hold connections.
#[derive(Clone, Copy)]
struct ConnectionTimeouts {
    tls_handshake: Duration,
    first_request: Duration,
    header_read: Duration,
}

impl Server {
    /// Binds every listener at once, so that a taken port fails start-up and
    /// port 0 (used by tests) resolves to a known address.
    pub fn bind(config: &Config, app: Router) -> anyhow::Result<Self> {
        let tls = tls::server_config(&config.tls, config.env)?;
        let (https, https_addr) = listen(config.server.https_addr)?;
        let redirect = config.server.http_redirect_addr.map(listen).transpose()?;
        Ok(Self {
            https,
            https_addr,
            redirect,
            tls,
            app,
            public_url: config.server.public_url.clone(),
            shutdown_grace: config.server.shutdown_grace,
            timeouts: ConnectionTimeouts {
                tls_handshake: config.server.tls_handshake_timeout,
                first_request: config.server.first_request_timeout,
                header_read: config.server.header_read_timeout,
            },
        })
    }

    #[must_use]
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    #[must_use]
    pub fn http_redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect.as_ref().map(|(_, addr)| *addr)
    }

    /// Serves until `shutdown` completes, then stops accepting connections
    /// and gives in-flight requests up to `server.shutdown_grace_secs`.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let https_handle = Handle::new();
        let redirect_handle = Handle::new();

        let timeouts = self.timeouts;
        let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(self.tls))
            .handshake_timeout(timeouts.tls_handshake);
        let mut https = axum_server::from_tcp(self.https)?
            .acceptor(acceptor)
            .handle(https_handle.clone())
            .first_request_timeout(timeouts.first_request);
        https.http_builder().http1().header_read_timeout(timeouts.header_read).max_buf_size(MAX_HEADER_BYTES);
        https
            .http_builder()
            .http2()
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
            .max_header_list_size(u32::try_from(MAX_HEADER_BYTES)?);
        let https = https.serve(self.app.into_make_service_with_connect_info::<SocketAddr>());

        let public_url = self.public_url;
        let redirect = {
            let redirect_handle = redirect_handle.clone();
            async move {
                let Some((listener, _)) = self.redirect else {
                    return Ok(());
                };
                axum_server::from_tcp(listener)?
                    .handle(redirect_handle)
                    .serve(http::https_redirect::router(public_url).into_make_service())
                    .await
            }
        };

        let grace = self.shutdown_grace;
        tokio::spawn({
            let https_handle = https_handle.clone();
            async move {
                shutdown.await;
                tracing::info!(grace_secs = grace.as_secs(), "shutting down: draining in-flight requests");
                https_handle.graceful_shutdown(Some(grace));
                redirect_handle.graceful_shutdown(Some(grace));
            }
        });

        tokio::try_join!(https, redirect).context("serving")?;
        tracing::info!("stopped");
        Ok(())
    }
}

fn listen(addr: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what orchestrators send).
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
