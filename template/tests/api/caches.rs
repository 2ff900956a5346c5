//! What every request checks is remembered briefly (verified tokens, the
//! account's state), and never at the price of correctness: a change made
//! here holds at once, a change made elsewhere (another instance, or the
//! database directly) within `auth.account_cache_ttl_ms`, and a remembered
//! token still meets the account check and the route's policy.

use std::time::{Duration, Instant};

use app::db::Pool;
use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, grant_admin};

#[sqlx::test]
async fn a_change_made_here_holds_at_once_and_one_made_elsewhere_within_the_ttl(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let root_id = app.register("root@example.com").await["id"].as_str().expect("id").to_owned();
    grant_admin(&pool, &root_id).await;
    let root = app.login("root@example.com", crate::helpers::PASSWORD).await;
    let ann = app.signed_up("ann@example.com").await;
    let ann_id =
        app.get_as("/api/v1/me", &ann.access).await.json()["subject"].as_str().expect("id").to_owned();
    assert_eq!(app.get_as("/api/v1/me", &ann.access).await.status, StatusCode::OK, "remembered now");

    // Here: disabling through the service holds for the very next request.
    let disabled =
        app.call("POST", &format!("/api/v1/admin/users/{ann_id}/disable"), Some(&root.access), None).await;
    assert_eq!(disabled.status, StatusCode::NO_CONTENT);
    app.get_as("/api/v1/me", &ann.access).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");

    // Elsewhere: a change this instance did not make shows within the TTL.
    assert_eq!(
        app.get_as("/api/v1/admin/users", &root.access).await.status,
        StatusCode::OK,
        "remembered now"
    );
    sqlx::query("DELETE FROM user_roles WHERE role = 'admin'").execute(&pool).await.expect("demote");
    let changed = Instant::now();
    loop {
        let answer = app.get_as("/api/v1/admin/users", &root.access).await;
        if answer.status == StatusCode::FORBIDDEN {
            break;
        }
        assert_eq!(answer.status, StatusCode::OK);
        assert!(
            changed.elapsed() < Duration::from_millis(1_200),
            "still an admin after {:?}",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A remembered token skips only its signature check: ending the session
/// refuses it at once, and the route's policy still applies.
#[sqlx::test]
async fn a_remembered_token_still_meets_the_account_check_and_the_policy(pool: Pool) {
    let app = TestApp::new(pool).await;
    let ann = app.signed_up("ann@example.com").await;
    assert_eq!(app.get_as("/api/v1/me", &ann.access).await.status, StatusCode::OK);
    app.get_as("/api/v1/admin/users", &ann.access).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let ended = app.post("/api/v1/auth/logout-all", Some(&ann.access), &json!({})).await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT);
    app.get_as("/api/v1/me", &ann.access).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
}
