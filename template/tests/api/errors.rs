//! Every non-2xx response has the one error shape, whoever produced it, and
//! never carries internal detail.

use std::time::Duration;

use app::db::Pool;
use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};

use crate::helpers::{TestApp, config, config_with, probes};

#[sqlx::test]
async fn unknown_paths_answer_404_with_a_generated_request_id(pool: Pool) {
    let response = TestApp::new(pool).await.get("/no/such/path").await;
    response.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(response.header("x-request-id").len(), 36, "a generated UUID");
}

#[sqlx::test]
async fn wrong_methods_answer_405_and_keep_the_allow_header(pool: Pool) {
    let request = Request::delete("/healthz").body(Body::empty()).expect("request");
    let response = TestApp::new(pool).await.send(request).await;
    response.assert_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    assert!(response.header("allow").contains("GET"));
}

#[sqlx::test]
async fn oversized_bodies_answer_413(pool: Pool) {
    let limit = config().server.body_limit_bytes;
    // Declared by Content-Length, as real clients do: refused before any
    // handler or extractor runs, whatever the route.
    let request = Request::post("/healthz")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, limit + 1)
        .body(Body::from(vec![b' '; limit + 1]))
        .expect("request");
    TestApp::new(pool)
        .await
        .send(request)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn oversized_streamed_bodies_answer_413_too() {
    let config = config();
    let chunks = config.server.body_limit_bytes / 1024 + 1;
    let app = TestApp::probe(probes(), &config);
    let chunks = (0..chunks).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
    let request = Request::post("/json")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .expect("request");
    app.send(request).await.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn extractor_rejections_use_the_error_shape() {
    let app = TestApp::probe(probes(), &config());

    let no_content_type = Request::post("/json").body(Body::from("{}")).expect("request");
    app.send(no_content_type)
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");

    let malformed = Request::post("/json")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .expect("request");
    let response = app.send(malformed).await;
    let error = response.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(!error["message"].as_str().unwrap_or_default().contains("not json"), "input is not echoed");
}

#[tokio::test]
async fn panics_answer_500_without_the_panic_message() {
    let response = TestApp::probe(probes(), &config()).get("/panic").await;
    response.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    let body = String::from_utf8_lossy(&response.body);
    assert!(!body.contains("secret") && !body.contains(".rs"), "{body}");
}

#[tokio::test]
async fn internal_errors_answer_500_without_their_cause() {
    let response = TestApp::probe(probes(), &config()).get("/internal").await;
    response.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    let body = String::from_utf8_lossy(&response.body);
    assert!(!body.contains("secret") && !body.contains("relation"), "{body}");
}

#[tokio::test]
async fn slow_requests_answer_408_at_the_deadline() {
    let config = config_with(|figment| figment.merge(("server.request_timeout_secs", 1)));
    let started = std::time::Instant::now();
    let response = TestApp::probe(probes(), &config).get("/slow").await;
    response.assert_error(StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT");
    assert!(started.elapsed() < Duration::from_secs(4), "the deadline, not the handler, ended it");
}
