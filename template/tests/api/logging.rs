//! What the logs hold: one line per request with its id, route, status and
//! latency, the cause of every 5xx, and never a credential.

use app::{db::Pool, http::ApiError, telemetry};
use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
    routing::get,
};
use serde_json::json;

use crate::helpers::{CapturedLogs, TestApp, TlsApp, config, config_with, full_router};

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
    assert_eq!(line["fields"]["status"], 200, "{line}");
    assert!(line["fields"]["latency_ms"].is_number(), "{line}");
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

/// The credentials of a whole session, over a real socket, with every log
/// line on (`trace`): the password of the registration and the login body,
/// the access token sent to an authenticated route, the refresh token sent
/// to refresh. None of them reaches the logs.
#[sqlx::test]
async fn no_credential_reaches_the_logs_even_at_trace_level(pool: Pool) {
    let logs = CapturedLogs::default();
    let subscriber_config =
        config_with(|figment| figment.merge(("log.format", "json")).merge(("log.filter", "trace")));
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(&subscriber_config, logs.clone()));
    let app =
        TlsApp::spawn_with(async |config| full_router(pool, config.clone()).await, |figment| figment).await;

    let password = "log-secret passphrase 7f3a9c";
    let account = json!({"email": "ann@example.com", "password": password});
    let registered =
        app.client.post(app.url("/api/v1/auth/register")).json(&account).send().await.expect("register");
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let pair: serde_json::Value = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&account)
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("JSON");
    let (access, refresh) =
        (pair["access_token"].as_str().expect("access"), pair["refresh_token"].as_str().expect("refresh"));
    let me = app.client.get(app.url("/api/v1/me")).bearer_auth(access).send().await.expect("me");
    assert_eq!(me.status(), StatusCode::OK);
    let refreshed = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), StatusCode::OK);
    app.shutdown().await.expect("clean stop");

    let text = logs.text();
    assert!(text.contains("request completed"), "logs were captured:\n{text}");
    for (name, secret) in
        [("the password", password), ("the access token", access), ("the refresh token", refresh)]
    {
        assert!(!text.contains(secret), "{name} reached the logs");
    }
    // A token is recognizable by any of its parts (a signature alone, say).
    for part in access.split('.') {
        assert!(!text.contains(part), "a part of the access token reached the logs");
    }
}

/// Credentials are marked sensitive before anything could log them: when a
/// request reaches a handler, its `Authorization`, `Cookie` and
/// `Proxy-Authorization` values print as "Sensitive" in any `Debug` output.
#[tokio::test]
async fn credential_headers_are_marked_sensitive_before_any_handler() {
    #[expect(clippy::disallowed_methods, reason = "a probe route, not an API operation")]
    let probe = Router::new().route(
        "/headers",
        get(|headers: HeaderMap| async move {
            let sensitive = [header::AUTHORIZATION, header::COOKIE, header::PROXY_AUTHORIZATION]
                .iter()
                .all(|name| headers.get(name).is_some_and(axum::http::HeaderValue::is_sensitive));
            sensitive.to_string()
        }),
    );
    let request = Request::get("/headers")
        .header(header::AUTHORIZATION, "Bearer secret")
        .header(header::COOKIE, "session=secret")
        .header(header::PROXY_AUTHORIZATION, "Basic c2VjcmV0")
        .body(Body::empty())
        .expect("request");
    let response = TestApp::probe(probe, &config()).send(request).await;
    assert_eq!(response.body, "true", "a credential header reached the handler unmarked");
}
