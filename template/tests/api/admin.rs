//! The admin API: listing, roles, disabling, and the last admin.

use app::db::Pool;
use axum::http::StatusCode;
use serde_json::json;

use crate::{
    authz::grant_admin,
    helpers::{PASSWORD, TestApp},
};

async fn admin(app: &TestApp, pool: &Pool, email: &str) -> (String, String) {
    let id = app.register(email).await["id"].as_str().expect("id").to_owned();
    grant_admin(pool, &id).await;
    (id, app.login(email, PASSWORD).await.access)
}

#[sqlx::test]
async fn admins_list_accounts_page_by_page_without_secrets(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let (_, token) = admin(&app, &pool, "admin@example.com").await;
    for i in 0..3 {
        app.register(&format!("user{i}@example.com")).await;
    }
    let first = app.get_as("/api/v1/admin/users?limit=3", &token).await;
    assert_eq!(first.status, StatusCode::OK);
    let first = first.json();
    assert_eq!(first["items"].as_array().map(Vec::len), Some(3));
    let after = first["next_after"].as_str().expect("more");
    let second = app.get_as(&format!("/api/v1/admin/users?limit=3&after={after}"), &token).await.json();
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
    let text = format!("{first}{second}");
    assert!(
        !text.contains("argon2") && !text.contains("password") && !text.contains("failed_logins"),
        "{text}"
    );
}

#[sqlx::test]
async fn disabling_an_account_stops_its_tokens_at_once(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let (_, admin_token) = admin(&app, &pool, "admin@example.com").await;
    let ann = app.signed_up("ann@example.com").await;
    let me = app.get_as("/api/v1/me", &ann.access).await.json();
    let id = me["subject"].as_str().expect("id");

    let response =
        app.post(&format!("/api/v1/admin/users/{id}/disable"), Some(&admin_token), &json!({})).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    app.get_as("/api/v1/me", &ann.access).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    app.refresh(&ann.refresh).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN");
    let login = json!({"email": "ann@example.com", "password": PASSWORD});
    app.post("/api/v1/auth/login", None, &login)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
}

#[sqlx::test]
async fn roles_are_set_by_admins_and_take_effect_at_the_next_login(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let (_, admin_token) = admin(&app, &pool, "admin@example.com").await;
    let ann_id = app.register("ann@example.com").await["id"].as_str().expect("id").to_owned();
    let uri = format!("/api/v1/admin/users/{ann_id}/roles");
    let response = app.call("PUT", &uri, Some(&admin_token), Some(&json!({"roles": ["admin"]}))).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json()["roles"], json!(["user", "admin"]), "user is always kept");
    let ann = app.login("ann@example.com", PASSWORD).await.access;
    assert_eq!(app.get_as("/api/v1/admin/users", &ann).await.status, StatusCode::OK);

    let unknown = app.call("PUT", &uri, Some(&admin_token), Some(&json!({"roles": ["root"]}))).await;
    unknown.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    let missing = format!("/api/v1/admin/users/{}/roles", uuid::Uuid::new_v4());
    let response = app.call("PUT", &missing, Some(&admin_token), Some(&json!({"roles": []}))).await;
    response.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[sqlx::test]
async fn the_last_admin_keeps_the_role_and_cannot_be_disabled(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let (id, token) = admin(&app, &pool, "admin@example.com").await;
    let demote = app
        .call("PUT", &format!("/api/v1/admin/users/{id}/roles"), Some(&token), Some(&json!({"roles": []})))
        .await;
    demote.assert_error(StatusCode::CONFLICT, "CONFLICT");
    let disable = app.post(&format!("/api/v1/admin/users/{id}/disable"), Some(&token), &json!({})).await;
    disable.assert_error(StatusCode::CONFLICT, "CONFLICT");

    let (_, second) = admin(&app, &pool, "second@example.com").await;
    let demoted = app
        .call("PUT", &format!("/api/v1/admin/users/{id}/roles"), Some(&second), Some(&json!({"roles": []})))
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "with another admin left it is allowed");
}
