//! The service over a real TLS socket: HTTPS by default, HTTP/2 and HTTP/1.1,
//! the plain-HTTP redirector, and graceful shutdown.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use app::db::Pool;
use axum::{Router, http::StatusCode, routing::get};
use tokio::sync::Notify;

use crate::helpers::{TlsApp, assert_error_body, full_router};

#[sqlx::test]
async fn serves_https_with_http2_and_http1(pool: Pool) {
    let app = TlsApp::spawn(pool).await;

    let response = app.client.get(app.url("/healthz")).send().await.expect("HTTPS request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "ALPN negotiates h2");

    let http1 = app.client_builder(reqwest::Client::builder().http1_only());
    let response = http1.get(app.url("/nope")).send().await.expect("HTTP/1.1 request");
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let request_id = response.headers()["x-request-id"].to_str().expect("ASCII").to_owned();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_error_body(&response.json().await.expect("JSON"), "NOT_FOUND", &request_id);

    app.shutdown().await.expect("clean stop");
}

#[sqlx::test]
async fn plain_http_only_redirects_to_the_public_url(pool: Pool) {
    let app = TlsApp::spawn_with(
        async |config| full_router(pool, config.clone()).await,
        |figment| {
            figment
                .merge(("server.http_redirect_addr", "127.0.0.1:0"))
                .merge(("server.public_url", "https://api.example.com"))
        },
    )
    .await;
    let redirect: SocketAddr = app.redirect.expect("redirect listener");
    let plain =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let response = plain
        .get(format!("http://{redirect}/readyz?verbose=1"))
        .header("host", "evil.example")
        .send()
        .await
        .expect("plain HTTP request");
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()["location"], "https://api.example.com/readyz?verbose=1");
    let head = plain.head(format!("http://{redirect}/healthz")).send().await.expect("HEAD");
    assert_eq!(head.status(), StatusCode::PERMANENT_REDIRECT);

    // A client posting credentials over plain HTTP must not appear to work
    // (a redirected POST is replayed by many clients): it is told to use
    // HTTPS instead, in the error shape.
    let posted = plain
        .post(format!("http://{redirect}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "ann@example.com", "password": "secret"}))
        .send()
        .await
        .expect("plain HTTP POST");
    assert_eq!(posted.status(), StatusCode::FORBIDDEN);
    assert!(posted.headers().get("location").is_none());
    let request_id = posted.headers()["x-request-id"].to_str().expect("ASCII").to_owned();
    assert_error_body(&posted.json().await.expect("JSON"), "HTTPS_REQUIRED", &request_id);
    app.shutdown().await.expect("clean stop");
}

/// A request in flight when shutdown starts still completes; afterwards the
/// listener is closed.
#[tokio::test]
async fn graceful_shutdown_drains_in_flight_requests() {
    let started = Arc::new(Notify::new());
    let probe = {
        let started = started.clone();
        #[expect(clippy::disallowed_methods, reason = "a probe route, not an API operation")]
        let router = Router::new().route(
            "/slow",
            get(move || async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
                "done"
            }),
        );
        router
    };
    let app =
        TlsApp::spawn_with(async |config| app::http::with_middleware(probe, config), |figment| figment).await;
    let in_flight = tokio::spawn(app.client.get(app.url("/slow")).send());
    started.notified().await;

    let client = app.client.clone();
    let url = app.url("/slow");
    app.shutdown().await.expect("clean stop");
    let response = in_flight.await.expect("joined").expect("the in-flight request completed");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.expect("body"), "done");
    assert!(client.get(url).send().await.is_err(), "no longer accepting connections");
}
