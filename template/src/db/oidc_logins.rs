//! The `oidc_logins` table: what a login needs to remember between the
//! redirect to the provider and the provider's callback. Times are unix
//! seconds, so that expired rows can be counted and deleted in plain SQL.

use uuid::Uuid;

use super::Pool;

pub struct PendingLogin<'a> {
    pub state_hash: &'a [u8],
    pub browser_hash: &'a [u8],
    /// Sealed (see `auth::oidc::login`).
    pub pkce_verifier: &'a str,
    pub nonce: &'a str,
    pub expires_at: i64,
    /// The signed-in account that asked to link the provider identity.
    pub link_user_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
pub struct TakenLogin {
    pub browser_hash: Vec<u8>,
    pub pkce_verifier: String,
    pub nonce: String,
    pub expires_at: i64,
    pub link_user_id: Option<Uuid>,
}

/// Remembers a login unless `max_pending` unexpired logins are waiting
/// already; `false` then. Anonymous requests write these rows, so their
/// number is bounded (concurrent inserts may pass the bound by a few).
pub async fn insert(
    pool: &Pool,
    login: PendingLogin<'_>,
    now: i64,
    max_pending: u32,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO oidc_logins (state_hash, browser_hash, pkce_verifier, nonce, expires_at, link_user_id) \
         SELECT $1, $2, $3, $4, $5, $6 \
         WHERE (SELECT COUNT(*) FROM oidc_logins WHERE expires_at >= $7) < $8",
    )
    .bind(login.state_hash)
    .bind(login.browser_hash)
    .bind(login.pkce_verifier)
    .bind(login.nonce)
    .bind(login.expires_at)
    .bind(login.link_user_id)
    .bind(now)
    .bind(i64::from(max_pending))
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Removes and returns the login for `state_hash`: a state works once.
pub async fn take(pool: &Pool, state_hash: &[u8]) -> Result<Option<TakenLogin>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM oidc_logins WHERE state_hash = $1 \
         RETURNING browser_hash, pkce_verifier, nonce, expires_at, link_user_id",
    )
    .bind(state_hash)
    .fetch_optional(pool)
    .await
}

/// Up to `limit` pending logins (state hash and stored verifier) whose
/// verifier is not sealed with the prefix `sealed_prefix`.
pub async fn sealed_otherwise(
    pool: &Pool,
    sealed_prefix: &str,
    limit: u32,
) -> Result<Vec<(Vec<u8>, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT state_hash, pkce_verifier FROM oidc_logins WHERE pkce_verifier NOT LIKE $1 \
         ORDER BY state_hash LIMIT $2",
    )
    .bind(format!("{sealed_prefix}%"))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// Sets the stored verifier of the login `state_hash` if it is still
/// `read_verifier`; `false` when the login was taken in between.
pub async fn reseal_verifier(
    pool: &Pool,
    state_hash: &[u8],
    read_verifier: &str,
    verifier: &str,
) -> Result<bool, sqlx::Error> {
    let result =
        sqlx::query("UPDATE oidc_logins SET pkce_verifier = $3 WHERE state_hash = $1 AND pkce_verifier = $2")
            .bind(state_hash)
            .bind(read_verifier)
            .bind(verifier)
            .execute(pool)
            .await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes the logins that expired before `now`, abandoned half-way;
/// returns how many.
pub async fn delete_expired(pool: &Pool, now: i64) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM oidc_logins WHERE expires_at < $1")
        .bind(now)
        .execute(pool)
        .await
        .map(|result| result.rows_affected())
}
