//! The background sweep: rows that can never matter again are deleted, and
//! nothing that still matters is.

use app::{db::Pool, maintenance};
use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

async fn count(pool: &Pool, query: &'static str) -> i64 {
    sqlx::query_scalar(query).fetch_one(pool).await.expect("count")
}

#[sqlx::test]
async fn the_sweep_deletes_dead_rows_and_keeps_live_ones(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let first = app.signed_up("ann@example.com").await;
    // The live session: its used token stays for reuse detection.
    let live = app.refresh(&first.refresh).await.json()["refresh_token"].as_str().expect("token").to_owned();
    let ended = app.login("ann@example.com", PASSWORD).await;
    app.post("/api/v1/auth/logout", None, &json!({"refresh_token": ended.refresh})).await;
    let expired = app.login("ann@example.com", PASSWORD).await;
    let past = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    sqlx::query("UPDATE refresh_tokens SET family_expires_at = $1 WHERE revoked_at IS NULL AND used_at IS NULL AND token_hash = $2")
        .bind(past)
        .bind(sha2_of(&expired.refresh))
        .execute(&pool)
        .await
        .expect("expire a family");
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM refresh_tokens").await, 4);

    let wrong = json!({"email": "ann@example.com", "password": "not the password at all"});
    app.post_from(std::net::IpAddr::from([127, 0, 0, 9]), "/api/v1/auth/login", None, &wrong).await;
    sqlx::query("UPDATE window_counters SET window_ends = 0").execute(&pool).await.expect("end the windows");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (state, expires_at) in [(b"abandoned".as_slice(), now - 60), (b"pending".as_slice(), now + 600)] {
        sqlx::query(
            "INSERT INTO oidc_logins (state_hash, browser_hash, pkce_verifier, nonce, expires_at) VALUES ($1, $1, 'v', 'n', $2)",
        )
        .bind(state)
        .bind(expires_at)
        .execute(&pool)
        .await
        .expect("login");
    }

    let swept = maintenance::sweep(&pool).await.expect("sweep");
    assert_eq!((swept.refresh_tokens, swept.oidc_logins), (2, 1), "{swept:?}");
    assert!(swept.window_counters >= 1, "{swept:?}");
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM refresh_tokens").await, 2);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM oidc_logins").await, 1);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM window_counters").await, 0);

    // What is left still works: the replay of the used token is still
    // caught, which ends the live session too.
    app.refresh(&first.refresh).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN");
    app.refresh(&live).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN");
}

fn sha2_of(token: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes()).to_vec()
}
