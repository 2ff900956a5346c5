use app::db::Pool;
use axum::http::StatusCode;

use crate::helpers::TestApp;

#[sqlx::test]
async fn liveness_answers_ok(pool: Pool) {
    let response = TestApp::new(pool).await.get("/healthz").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), serde_json::json!({"status": "ok"}));
}

#[sqlx::test]
async fn readiness_answers_ok_while_the_database_answers(pool: Pool) {
    let response = TestApp::new(pool).await.get("/readyz").await;
    assert_eq!(response.status, StatusCode::OK);
}

#[sqlx::test]
async fn readiness_answers_503_without_detail_when_the_database_is_gone(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    pool.close().await;
    let response = app.get("/readyz").await;
    let error = response.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    let message = error["message"].as_str().expect("message").to_lowercase();
    assert!(!message.contains("pool") && !message.contains("sqlx"), "{message}");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}
