//! The `oidc_logins` table: what a login needs to remember between the
//! redirect to the provider and the provider's callback.

use super::Pool;

pub struct PendingLogin<'a> {
    pub state_hash: &'a [u8],
    pub browser_hash: &'a [u8],
    pub pkce_verifier: &'a str,
    pub nonce: &'a str,
    pub expires_at: i64,
}

#[derive(sqlx::FromRow)]
pub struct TakenLogin {
    pub browser_hash: Vec<u8>,
    pub pkce_verifier: String,
    pub nonce: String,
    pub expires_at: i64,
}

/// Remembers a login, and forgets the expired ones of abandoned logins.
pub async fn insert(pool: &Pool, login: PendingLogin<'_>, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM oidc_logins WHERE expires_at < $1").bind(now).execute(pool).await?;
    sqlx::query(
        "INSERT INTO oidc_logins (state_hash, browser_hash, pkce_verifier, nonce, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(login.state_hash)
    .bind(login.browser_hash)
    .bind(login.pkce_verifier)
    .bind(login.nonce)
    .bind(login.expires_at)
    .execute(pool)
    .await
    .map(drop)
}

/// Removes and returns the login for `state_hash`: a state works once.
pub async fn take(pool: &Pool, state_hash: &[u8]) -> Result<Option<TakenLogin>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM oidc_logins WHERE state_hash = $1 RETURNING browser_hash, pkce_verifier, nonce, expires_at",
    )
    .bind(state_hash)
    .fetch_optional(pool)
    .await
}
