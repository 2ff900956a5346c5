//! What the logs hold: one line per request with its id, route, status and
//! latency, the cause of every 5xx, and never a credential.

use app::{db::Pool, http::ApiError, telemetry};
use axum::{
    Router,
    body::Body,
    http::{Request, header},
    routing::get,
};

use crate::helpers::{CapturedLogs, TestApp, config_with};

#[sqlx::test]
async fn request_lines_carry_id_route_status_and_latency_but_no_secrets(pool: Pool) {
    let config = config_with(|figment| figment.merge(("log.format", "json")));
    let logs = CapturedLogs::default();
    // The test runtime is single-threaded, so a thread-local subscriber sees
    // everything the app logs.
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(&config, logs.clone()));

    let request = Request::get("/healthz?code=query-secret-value")
        .header(header::AUTHORIZATION, "Bearer header-secret-token")
        .header(header::COOKIE, "session=cookie-secret-value")
        .header("x-request-id", "log-test-1")
        .body(Body::empty())
        .expect("request");
    TestApp::with_config(pool, config).await.send(request).await;

    let text = logs.text();
    for secret in ["query-secret-value", "header-secret-token", "cookie-secret-value"] {
        assert!(!text.contains(secret), "{secret} leaked into the logs:\n{text}");
    }
    let line: serde_json::Value = text
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON lines"))
        .find(|line| line["fields"]["message"] == "request completed")
        .unwrap_or_else(|| panic!("no request line in:\n{text}"));
    let span = &line["span"];
    assert_eq!(span["request_id"], "log-test-1", "{line}");
    assert_eq!(span["route"], "/healthz", "{line}");
    assert_eq!(span["method"], "GET", "{line}");
    assert_eq!(span["status"], 200, "{line}");
    assert!(span["latency_ms"].is_number(), "{line}");
}

#[tokio::test]
async fn the_cause_of_a_500_is_logged_with_the_request_id() {
    let config = config_with(|figment| figment.merge(("log.format", "json")));
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(&config, logs.clone()));
    #[expect(clippy::disallowed_methods, reason = "a probe route, not an API operation")]
    let probe = Router::new().route(
        "/fail",
        get(|| async { ApiError::Internal(anyhow::anyhow!("disk quota exceeded on /var/lib/db")) }),
    );
    let request =
        Request::get("/fail").header("x-request-id", "log-test-2").body(Body::empty()).expect("request");
    let response = TestApp::probe(probe, &config).send(request).await;
    assert!(!String::from_utf8_lossy(&response.body).contains("quota"));

    let text = logs.text();
    let cause = text
        .lines()
        .find(|line| line.contains("disk quota exceeded"))
        .unwrap_or_else(|| panic!("the cause was not logged:\n{text}"));
    assert!(cause.contains("log-test-2"), "{cause}");
}

#[tokio::test]
async fn cookies_set_by_a_response_never_reach_the_logs() {
    let config = config_with(|figment| figment.merge(("log.format", "json")).merge(("log.filter", "trace")));
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(&config, logs.clone()));
    #[expect(clippy::disallowed_methods, reason = "a probe route, not an API operation")]
    let probe = Router::new().route(
        "/cookie",
        get(|| async { ([(header::SET_COOKIE, "session=set-cookie-secret; Secure; HttpOnly")], "ok") }),
    );
    let response = TestApp::probe(probe, &config).get("/cookie").await;
    assert!(response.header("set-cookie").contains("set-cookie-secret"), "the client still gets it");
    let text = logs.text();
    assert!(text.contains("request completed"), "logs were captured:\n{text}");
    assert!(!text.contains("set-cookie-secret"), "a Set-Cookie value leaked into the logs:\n{text}");
}
