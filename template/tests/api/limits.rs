//! The limits that keep slow, silent or greedy clients from exhausting the
//! service, each at a configured value: the TLS handshake, the first
//! request, request-header and body timeouts, the connection and
//! concurrency caps, HTTP/2 streams and resets, and body limits.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use app::db::Pool;
use axum::{
    http::{Request, StatusCode},
    routing::get,
};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned,
    pki_types::{CertificateDer, pem::PemObject},
};
use serde_json::json;
use tokio::net::TcpStream as TokioTcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use crate::helpers::{PASSWORD, TestApp, TlsApp, config_with, full_router, probes};

/// A server whose connection timeout `key` is one second and every other
/// ten, so that each test meets the one timeout it is about.
async fn impatient_server(pool: Pool, key: &'static str) -> TlsApp {
    TlsApp::spawn_with(
        async |config| full_router(pool, config.clone()).await,
        |figment| {
            figment
                .merge(("server.tls_handshake_timeout_secs", 10))
                .merge(("server.first_request_timeout_secs", 10))
                .merge(("server.header_read_timeout_secs", 10))
                .merge((key, 1))
        },
    )
    .await
}

/// How long until the server closes a connection that `client` set up and
/// then left waiting, or `None` if it was still open after five seconds.
/// Runs on a blocking thread, since the server shares the test's runtime.
async fn closed_after(client: impl FnOnce() -> Box<dyn Read + Send> + Send + 'static) -> Option<Duration> {
    tokio::task::spawn_blocking(move || {
        let mut connection = client();
        let started = Instant::now();
        let mut buffer = [0_u8; 1024];
        loop {
            match connection.read(&mut buffer) {
                Ok(0) => return Some(started.elapsed()),
                // Whatever the server says before it closes (a 408, say).
                Ok(_) => {}
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
                Err(_) => return Some(started.elapsed()),
            }
        }
    })
    .await
    .expect("joined")
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    stream
}

/// A TLS connection to `addr` with the handshake done.
fn tls(addr: SocketAddr, certificate: &Path) -> StreamOwned<ClientConnection, TcpStream> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(certificate).expect("PEM") {
        roots.add(cert.expect("certificate")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = "localhost".try_into().expect("name");
    let mut stream =
        StreamOwned::new(ClientConnection::new(Arc::new(config), name).expect("client"), tcp(addr));
    stream.conn.complete_io(&mut stream.sock).expect("handshake");
    stream
}

fn assert_cut_off(closed: Option<Duration>, what: &str) {
    let after = closed.unwrap_or_else(|| panic!("{what}: still open after five seconds"));
    assert!(
        after >= Duration::from_millis(700) && after < Duration::from_secs(4),
        "{what}: closed after {after:?}"
    );
}

#[sqlx::test]
async fn a_connection_that_never_starts_tls_is_closed(pool: Pool) {
    let app = impatient_server(pool, "server.tls_handshake_timeout_secs").await;
    let addr = app.https;
    assert_cut_off(closed_after(move || Box::new(tcp(addr))).await, "no ClientHello");
    app.shutdown().await.expect("clean stop");
}

#[sqlx::test]
async fn a_connection_that_sends_no_request_is_closed(pool: Pool) {
    let app = impatient_server(pool, "server.first_request_timeout_secs").await;
    let (addr, certificate) = (app.https, app.certificate());
    assert_cut_off(closed_after(move || Box::new(tls(addr, &certificate))).await, "no request");
    app.shutdown().await.expect("clean stop");
}

/// Slowloris: headers that never end hold nothing for long.
#[sqlx::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off(pool: Pool) {
    let app = impatient_server(pool, "server.header_read_timeout_secs").await;
    let (addr, certificate) = (app.https, app.certificate());
    let closed = closed_after(move || {
        let mut stream = tls(addr, &certificate);
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1\r\n").expect("write");
        stream.flush().expect("flush");
        Box::new(stream)
    })
    .await;
    assert_cut_off(closed, "unfinished headers");
    app.shutdown().await.expect("clean stop");
}

/// Over the cap a request is answered 503 at once, not queued; the probes
/// are never shed.
#[tokio::test]
async fn over_the_concurrency_cap_requests_are_shed_at_once_but_probes_never() {
    let config = config_with(|figment| figment.merge(("server.max_concurrent_requests", 1)));
    #[expect(clippy::disallowed_methods, reason = "a probe route, not an API operation")]
    let routes = probes().route("/healthz", get(|| async { "alive" }));
    let app = TestApp::probe(routes, &config);
    let slow = app.get("/slow");
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let shed = app.get("/slow").await;
        let shed_after = started.elapsed();
        (shed, shed_after, app.get("/healthz").await)
    };
    let ((shed, shed_after, probe), _) =
        tokio::join!(meanwhile, tokio::time::timeout(Duration::from_secs(1), slow));
    shed.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert_eq!(shed.header("retry-after"), "1");
    assert!(shed_after < Duration::from_millis(200), "shed after {shed_after:?}, not at once");
    assert_eq!(probe.status, StatusCode::OK, "the probe is never shed");
}

/// Credentials and names are short: the account routes take 8 KiB, far
/// below the general limit.
#[sqlx::test]
async fn account_routes_refuse_bodies_over_8_kib(pool: Pool) {
    let app = TestApp::new(pool).await;
    let padded =
        json!({"email": "ann@example.com", "password": PASSWORD, "display_name": "x".repeat(9 * 1024)});
    app.post("/api/v1/auth/register", None, &padded)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    let fits =
        json!({"email": "ann@example.com", "password": PASSWORD, "display_name": "x".repeat(7 * 1024)});
    app.post("/api/v1/auth/register", None, &fits)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
}

/// A body that stops arriving is cut off after the idle timeout, however
/// long the whole-request deadline.
#[sqlx::test]
async fn a_body_that_stalls_is_cut_off(pool: Pool) {
    let app = impatient_server(pool, "server.body_idle_timeout_secs").await;
    let (addr, certificate) = (app.https, app.certificate());
    let closed = closed_after(move || {
        let mut stream = tls(addr, &certificate);
        let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                    Content-Length: 1000\r\n\r\n{\"email\":";
        stream.write_all(head.as_bytes()).expect("write");
        stream.flush().expect("flush");
        Box::new(stream)
    })
    .await;
    assert_cut_off(closed, "a stalled body");
    app.shutdown().await.expect("clean stop");
}

/// Over `server.max_connections` a new connection is closed at once, before
/// its handshake; when one closes, there is room again.
#[sqlx::test]
async fn connections_over_the_cap_are_closed_at_once(pool: Pool) {
    let app = TlsApp::spawn_with(
        async |config| full_router(pool, config.clone()).await,
        |figment| figment.merge(("server.max_connections", 2)),
    )
    .await;
    let (addr, certificate) = (app.https, app.certificate());
    let held = tokio::task::spawn_blocking({
        let certificate = certificate.clone();
        move || [tls(addr, &certificate), tls(addr, &certificate)]
    })
    .await
    .expect("two connections");
    let refused = closed_after(move || Box::new(tcp(addr))).await;
    let after = refused.expect("the third connection was left open");
    assert!(after < Duration::from_millis(500), "closed only after {after:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = tokio::task::spawn_blocking(move || {
        let mut stream = tls(addr, &certificate);
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("write");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .expect("joined");
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    app.shutdown().await.expect("clean stop");
}

/// A body over the limit gets its 413 over HTTP/2 too, whether its length
/// is declared or not, and so does any refusal that comes before the body
/// is read (a missing token here).
#[sqlx::test]
async fn an_oversized_upload_gets_its_answer_over_http2(pool: Pool) {
    let app = TlsApp::spawn(pool).await;
    let client = app.client_builder(reqwest::Client::builder().http2_prior_knowledge());
    let five_mib = vec![b'a'; 5 * 1024 * 1024];
    let declared = client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(five_mib.clone())
        .send()
        .await
        .expect("an answer, not a stream error");
    assert_eq!(declared.version(), reqwest::Version::HTTP_2);
    assert_eq!(declared.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = declared.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        five_mib.chunks(64 * 1024).map(|chunk| Ok(chunk.to_vec())).collect();
    let streamed = client
        .post(app.url("/api/v1/notes"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .expect("an answer, not a stream error");
    assert_eq!(streamed.status(), StatusCode::UNAUTHORIZED);
    app.shutdown().await.expect("clean stop");
}

/// An HTTP/2 connection to `addr` (TLS, ALPN h2) and its driver.
async fn http2(
    addr: SocketAddr,
    certificate: &Path,
) -> (h2::client::SendRequest<axum::body::Bytes>, h2::client::Connection<TlsStream<TokioTcpStream>>) {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(certificate).expect("PEM") {
        roots.add(cert.expect("certificate")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TokioTcpStream::connect(addr).await.expect("connect");
    let name = "localhost".try_into().expect("name");
    let tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("handshake");
    h2::client::handshake(tls).await.expect("HTTP/2")
}

/// Opens `count` streams and resets each at once (the rapid-reset attack),
/// then asks for /healthz: the answer, or how the connection ended.
async fn rapid_reset(app: &TlsApp, count: usize) -> Result<StatusCode, h2::Error> {
    let (mut client, connection) = http2(app.https, &app.certificate()).await;
    let driver = tokio::spawn(connection);
    let attack = async {
        for _ in 0..count {
            client = client.ready().await?;
            let request = Request::get(app.url("/healthz")).body(()).expect("request");
            let (_, mut stream) = client.send_request(request, true)?;
            stream.send_reset(h2::Reason::CANCEL);
        }
        // Time for the server to clear the reset streams, so that a server
        // that lets the client go on has room for one more.
        tokio::time::sleep(Duration::from_millis(200)).await;
        client = client.ready().await?;
        let request = Request::get(app.url("/healthz")).body(()).expect("request");
        let (response, _) = client.send_request(request, true)?;
        Ok(response.await?.status())
    };
    let answer = attack.await;
    if answer.is_ok() {
        driver.abort();
        return answer;
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), driver).await.expect("the connection ended");
    Err(ended.expect("joined").expect_err("the server closed the connection"))
}

/// HTTP/2 limits come from configuration: the streams a connection may
/// open, and how many streams a client may reset before they are served
/// (rapid reset) before its connection is closed.
#[sqlx::test]
async fn http2_streams_and_rapid_resets_are_bounded_as_configured(pool: Pool) {
    let strict = TlsApp::spawn_with(
        async |config| full_router(pool.clone(), config.clone()).await,
        |figment| {
            figment
                .merge(("server.http2_max_concurrent_streams", 7))
                .merge(("server.http2_max_pending_accept_reset_streams", 5))
        },
    )
    .await;
    let (client, mut connection) = http2(strict.https, &strict.certificate()).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while connection.max_concurrent_send_streams() != 7 && Instant::now() < deadline {
        tokio::select! {
            _ = &mut connection => panic!("the connection ended"),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    assert_eq!(connection.max_concurrent_send_streams(), 7, "SETTINGS_MAX_CONCURRENT_STREAMS");
    drop((client, connection));
    // A GOAWAY (ENHANCE_YOUR_CALM), or, when the client was still writing
    // as the server hung up, a broken pipe.
    let closed = rapid_reset(&strict, 200).await.expect_err("the attacker's connection survived");
    assert!(closed.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM) || closed.is_io(), "{closed}");

    let generous = TlsApp::spawn_with(
        async |config| full_router(pool, config.clone()).await,
        |figment| figment.merge(("server.http2_max_pending_accept_reset_streams", 100_000)),
    )
    .await;
    let answer = rapid_reset(&generous, 200).await;
    assert_eq!(answer.expect("a generous limit lets the client go on"), StatusCode::OK);
    strict.shutdown().await.expect("clean stop");
    generous.shutdown().await.expect("clean stop");
}

/// A graceful shutdown tells HTTP/2 clients to go away (a GOAWAY frame):
/// the request in flight is answered, the connection then ends cleanly
/// rather than being cut, and the client may open no new stream on it, so
/// it retries elsewhere instead of losing a request.
#[sqlx::test]
async fn a_graceful_shutdown_sends_http2_clients_a_goaway(pool: Pool) {
    let app = TlsApp::spawn(pool).await;
    let (client, connection) = http2(app.https, &app.certificate()).await;
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    // A keep-alive connection, in use before the shutdown.
    let (warm, _) = client
        .send_request(Request::get(app.url("/healthz")).body(()).expect("request"), true)
        .expect("sent");
    assert_eq!(warm.await.expect("answered").status(), StatusCode::OK);
    // A login costs a password hash, so it is still in flight when the
    // shutdown begins.
    let request = Request::post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(())
        .expect("request");
    let (response, mut body) = client.send_request(request, false).expect("sent");
    let guess = json!({"email": "nobody@example.com", "password": PASSWORD}).to_string();
    body.send_data(guess.into(), true).expect("body sent");
    let stopped = tokio::spawn(app.shutdown());

    let response = response.await.expect("answered during the drain");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let ended = connection.await.expect("joined");
    assert!(ended.is_ok(), "the connection was cut, not ended: {ended:?}");
    let refused = client.ready().await.expect_err("no new stream on a connection told to go away");
    assert!(refused.is_go_away(), "{refused:?}");
    stopped.await.expect("joined").expect("clean stop");
}

/// Over HTTP/1.1 the next request of a connection follows the body of the
/// last: one refused before its body was read leaves that body in the way,
/// so the connection ends with the answer, and the answer says so
/// (`Connection: close`) lest the client send its next request down a
/// closing connection. A body that was read keeps the connection open.
#[sqlx::test]
async fn a_refusal_before_the_body_is_read_closes_the_connection_and_says_so(pool: Pool) {
    let app = TestApp::new(pool).await;
    let streamed = || {
        let chunks = [b"{\"title\":".to_vec(), b"\"unread\"}".to_vec()].map(Ok::<_, std::io::Error>);
        Request::post("/api/v1/notes")
            .header("content-type", "application/json")
            .body(axum::body::Body::from_stream(futures_util::stream::iter(chunks)))
            .expect("request")
    };
    let refused = app.send(streamed()).await;
    refused.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(refused.header("connection"), "close");

    let ann = app.signed_up("ann@example.com").await.access;
    let read = app.post("/api/v1/notes", Some(&ann), &json!({"title": ""})).await;
    read.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert!(read.headers.get("connection").is_none(), "a body read to its end keeps the connection");
}
