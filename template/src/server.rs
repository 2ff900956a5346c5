//! Listeners: HTTPS with rustls, an optional plain-HTTP listener that only
//! redirects to HTTPS (`http::https_redirect`), and a graceful shutdown that
//! drains in-flight requests. Each connection is bounded: in number, in the
//! time each step may take, and, over HTTP/2, in streams and resets. SIGHUP
//! reloads the certificate and key, so that renewing them needs no restart.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::{SocketAddr, TcpListener},
    pin::Pin,
    sync::Arc,
    task::{self, Poll},
    time::Duration,
};

use anyhow::Context;
use axum::Router;
use axum_server::{
    Handle,
    tls_rustls::{RustlsAcceptor, RustlsConfig},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;
use url::Url;

use crate::{
    config::{Config, Environment, ServerConfig, TlsConfig},
    http, tls,
};

/// Largest request head (request line and headers) accepted.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The bound listeners, ready to serve.
pub struct Server {
    https: TcpListener,
    https_addr: SocketAddr,
    redirect: Option<(TcpListener, SocketAddr)>,
    tls: Arc<rustls::ServerConfig>,
    /// Where `tls` came from, read again on SIGHUP.
    tls_source: (TlsConfig, Environment),
    app: Router,
    public_url: Url,
    shutdown_grace: Duration,
    limits: ServerConfig,
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
            tls_source: (config.tls.clone(), config.env),
            app,
            public_url: config.server.public_url.clone(),
            shutdown_grace: config.server.shutdown_grace,
            limits: config.server.clone(),
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

        // Each step of a connection has a deadline, so that slow or silent
        // clients (slowloris) cannot hold connections.
        let limits = self.limits;
        let certificate = RustlsConfig::from_config(self.tls);
        reload_certificate_on_hangup(certificate.clone(), self.tls_source)?;
        let acceptor = RustlsAcceptor::new(certificate).handshake_timeout(limits.tls_handshake_timeout);
        let mut https = axum_server::from_tcp(self.https)?
            .acceptor(acceptor)
            .handle(https_handle.clone())
            .first_request_timeout(limits.first_request_timeout);
        https
            .http_builder()
            .http1()
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(MAX_HEADER_BYTES);
        https
            .http_builder()
            .http2()
            .max_concurrent_streams(limits.http2_max_concurrent_streams)
            .max_pending_accept_reset_streams(limits.http2_max_pending_accept_reset_streams)
            .max_local_error_reset_streams(limits.http2_max_local_error_reset_streams)
            .max_header_list_size(u32::try_from(MAX_HEADER_BYTES)?);
        let connections = ConnectionCap {
            inner: self.app.into_make_service_with_connect_info::<SocketAddr>(),
            permits: Arc::new(Semaphore::new(limits.max_connections)),
        };
        let https = https.serve(connections);

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

/// On each SIGHUP, reads the certificate chain and key again: connections
/// from then on get the new pair, open ones keep theirs. A pair that fails
/// to load is logged and the current one kept, so a botched renewal never
/// takes the service down.
#[cfg(unix)]
fn reload_certificate_on_hangup(
    current: RustlsConfig,
    (settings, env): (TlsConfig, Environment),
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match tls::server_config(&settings, env) {
                Ok(reloaded) => {
                    current.reload_from_config(reloaded);
                    tracing::info!("TLS certificate reloaded");
                }
                Err(err) => {
                    tracing::error!(
                        error = format!("{err:#}"),
                        "TLS certificate not reloaded: kept the current one"
                    );
                }
            }
        }
    });
    Ok(())
}

/// Without SIGHUP (Windows), a renewed certificate needs a restart.
#[cfg(not(unix))]
#[expect(clippy::unnecessary_wraps, reason = "the same signature as on unix")]
fn reload_certificate_on_hangup(_: RustlsConfig, _: (TlsConfig, Environment)) -> anyhow::Result<()> {
    Ok(())
}

/// At most `server.max_connections` connections at once: the service of
/// each accepted connection holds a permit until the connection and its
/// requests are done. Without a permit the new connection is closed at once,
/// before its TLS handshake, rather than left waiting.
#[derive(Clone)]
struct ConnectionCap<M> {
    inner: M,
    permits: Arc<Semaphore>,
}

impl<M, T> Service<T> for ConnectionCap<M>
where
    M: Service<T, Error = Infallible>,
    M::Future: Send + 'static,
{
    type Response = Permitted<M::Response>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, cx: &mut task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(|never| match never {})
    }

    fn call(&mut self, target: T) -> Self::Future {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return Box::pin(async { Err(io::Error::other("server.max_connections reached")) });
        };
        let service = self.inner.call(target);
        Box::pin(async move {
            let Ok(service) = service.await;
            Ok(Permitted { inner: service, _permit: Arc::new(permit) })
        })
    }
}

/// A connection's service, with the connection's permit.
#[derive(Clone)]
struct Permitted<S> {
    inner: S,
    _permit: Arc<OwnedSemaphorePermit>,
}

impl<S: Service<R>, R> Service<R> for Permitted<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.inner.call(request)
    }
}

fn listen(addr: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

/// Listens for SIGINT (Ctrl-C) and SIGTERM (what orchestrators send) from
/// this call on, and completes on the first. Call it before starting up: a
/// signal that came before its handler would end the process at once (the
/// default action), without draining requests or flushing the audit trail.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
