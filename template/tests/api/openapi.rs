//! The OpenAPI document: committed, current, and true to what is served.

use std::path::Path;

use app::{db::Pool, http, telemetry};
use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
};

use crate::helpers::{CapturedLogs, TestApp, config_with};

const COMMITTED: &str = "openapi.json";

/// `openapi.json` at the project root is what clients and reviewers read; it
/// must match the code. `UPDATE_OPENAPI=1 cargo test openapi` rewrites it.
#[test]
fn the_committed_document_is_current() {
    let current = http::openapi().to_pretty_json().expect("serializable") + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &current).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "{COMMITTED} is stale; regenerate it with `UPDATE_OPENAPI=1 cargo test openapi`"
    );
}

#[test]
fn the_document_is_openapi_3_1() {
    let document = serde_json::to_value(http::openapi()).expect("serializable");
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", document["openapi"]);
}

/// Every (path, METHOD, operation) of the document.
fn operations() -> Vec<(String, String, serde_json::Value)> {
    let document = serde_json::to_value(http::openapi()).expect("serializable");
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(operation) = item.get(method) {
                operations.push((path.clone(), method.to_uppercase(), operation.clone()));
            }
        }
    }
    operations
}

/// Every documented operation is served: its request is routed to a
/// handler (the request span records the matched route; the fallback
/// records `<unmatched>`) and is not refused with 405. Status codes alone
/// cannot tell, since a handler may answer 404 too. (Routes cannot be served
/// undocumented: `clippy.toml` forbids registering them other than through
/// `routes!`.)
#[sqlx::test]
async fn every_documented_operation_is_served(pool: Pool) {
    let config = config_with(|figment| figment.merge(("log.format", "json")));
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(&config, logs.clone()));
    let app = TestApp::with_config(pool, config).await;
    let operations = operations();
    assert!(!operations.is_empty());
    for (path, method, _) in &operations {
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(path.replace(['{', '}'], ""))
            .header("x-request-id", format!("{method}-{}", path.replace(['/', '{', '}', '.'], "_")))
            .body(Body::empty())
            .expect("request");
        let status = app.send(request).await.status;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not served");
    }
    let routed: Vec<(String, String)> = logs
        .text()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "request completed")
        .map(|line| {
            let span = &line["span"];
            (
                span["route"].as_str().unwrap_or_default().to_owned(),
                span["method"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for (path, method, _) in &operations {
        assert!(
            routed.iter().any(|(route, logged)| route == path && logged == method),
            "{method} {path} is documented but no handler answered it; routed: {routed:?}"
        );
    }
}

/// Every operation documents its answers, and each error answer documents
/// the one error shape.
#[test]
fn every_operation_documents_its_responses_and_error_shape() {
    for (path, method, operation) in operations() {
        assert!(operation["operationId"].is_string() && operation["summary"].is_string(), "{method} {path}");
        let responses = operation["responses"].as_object().expect("responses");
        let error = |status: &str| status.starts_with('4') || status.starts_with('5');
        assert!(responses.keys().any(|status| !error(status)), "{method} {path} has no success response");
        for (status, response) in responses.iter().filter(|(status, _)| error(status)) {
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorEnvelope",
                "{method} {path} {status}"
            );
        }
    }
}

/// Production serves no docs unless `docs.expose` says so (the default
/// there); a service told not to answers 404 like for any unknown path.
#[sqlx::test]
async fn docs_are_not_served_when_turned_off(pool: Pool) {
    let served = TestApp::new(pool.clone()).await;
    assert_eq!(served.get("/openapi.json").await.status, StatusCode::OK, "development serves them");
    let hidden =
        TestApp::with_config(pool, config_with(|figment| figment.merge(("docs.expose", false)))).await;
    for path in ["/openapi.json", "/docs/", "/docs/swagger-ui.css"] {
        hidden.get(path).await.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
}
