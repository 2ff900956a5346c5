//! Security headers and CORS, on successes and errors alike.

use app::{db::Pool, http::DOCS_PATH};
use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};

use crate::helpers::{TestApp, TestResponse, config_with, probes};

fn assert_security_headers(response: &TestResponse, csp: &str) {
    assert_eq!(response.header("strict-transport-security"), "max-age=63072000; includeSubDomains");
    assert_eq!(response.header("x-content-type-options"), "nosniff");
    assert_eq!(response.header("referrer-policy"), "no-referrer");
    assert_eq!(response.header("cache-control"), "no-store");
    assert_eq!(response.header("x-frame-options"), "DENY");
    assert!(response.header("content-security-policy").starts_with(csp));
    assert!(response.headers.get(header::SERVER).is_none(), "no Server banner");
}

const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

#[sqlx::test]
async fn api_responses_and_errors_carry_the_security_headers(pool: Pool) {
    let app = TestApp::new(pool).await;
    for path in ["/healthz", "/missing"] {
        let response = app.get(path).await;
        assert_security_headers(&response, API_CSP);
    }
}

/// The answers that layers give on their own get the headers too: a CORS
/// preflight, a body over the limit, a request over its deadline, a panic.
#[tokio::test]
async fn answers_of_the_layers_carry_the_security_headers() {
    let config = config_with(|figment| {
        figment
            .merge(("cors.allowed_origins", ["https://app.example.com"]))
            .merge(("server.request_timeout_secs", 1))
    });
    let app = TestApp::probe(probes(), &config);
    let preflight = app.send(preflight("https://app.example.com")).await;
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        "https://app.example.com",
        "a real preflight"
    );
    let too_large = Request::post("/json")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, config.server.body_limit_bytes + 1)
        .body(Body::from(vec![b' '; config.server.body_limit_bytes + 1]))
        .expect("request");
    let too_large = app.send(too_large).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    let timed_out = app.get("/slow").await;
    assert_eq!(timed_out.status, StatusCode::REQUEST_TIMEOUT);
    let panicked = app.get("/panic").await;
    assert_eq!(panicked.status, StatusCode::INTERNAL_SERVER_ERROR);
    for response in [&preflight, &too_large, &timed_out, &panicked] {
        assert_security_headers(response, API_CSP);
    }
}

#[sqlx::test]
async fn the_docs_page_gets_a_csp_that_only_loads_its_own_assets(pool: Pool) {
    let response = TestApp::new(pool).await.get(&format!("{DOCS_PATH}/")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_security_headers(&response, "default-src 'none'; script-src 'self';");
    assert!(!response.header("content-security-policy").contains("http"), "no remote source");
}

fn preflight(origin: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/healthz")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .body(Body::empty())
        .expect("request")
}

#[sqlx::test]
async fn cross_origin_requests_are_denied_by_default(pool: Pool) {
    let app = TestApp::new(pool).await;
    let response = app.send(preflight("https://evil.example")).await;
    assert!(response.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    let simple = Request::get("/healthz")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::empty())
        .expect("request");
    assert!(app.send(simple).await.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

#[sqlx::test]
async fn configured_origins_are_allowed_and_no_others(pool: Pool) {
    let config = config_with(|figment| figment.merge(("cors.allowed_origins", ["https://app.example.com"])));
    let app = TestApp::with_config(pool, config).await;
    let allowed = app.send(preflight("https://app.example.com")).await;
    assert_eq!(allowed.header("access-control-allow-origin"), "https://app.example.com");
    assert!(allowed.headers.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    for other in ["https://evil.example", "https://app.example.com.evil.example", "http://app.example.com"] {
        let denied = app.send(preflight(other)).await;
        assert!(denied.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{other}");
    }
}
