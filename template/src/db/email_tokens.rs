//! The `email_tokens` table: tokens sent by mail, stored as their SHA-256,
//! each single-use, and one outstanding per account and purpose.

use uuid::Uuid;

use super::{Backend, Pool};

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Proves an address: a new account's, or the one it moves to.
    Verify,
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::ResetPassword => "reset",
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct EmailToken {
    pub user_id: Uuid,
    pub email: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Stores a new token, replacing any outstanding one of the account for
/// the same purpose (a newer link invalidates the older).
pub async fn replace(
    pool: &Pool,
    token_hash: &[u8],
    purpose: Purpose,
    user_id: Uuid,
    email: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM email_tokens WHERE user_id = $1 AND purpose = $2")
        .bind(user_id)
        .bind(purpose.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, email, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(email)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The token, without using it up.
pub async fn find(
    pool: &Pool,
    token_hash: &[u8],
    purpose: Purpose,
) -> Result<Option<EmailToken>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, email, expires_at FROM email_tokens WHERE token_hash = $1 AND purpose = $2",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .fetch_optional(pool)
    .await
}

/// Removes and returns the token: it works once.
pub async fn take<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    token_hash: &[u8],
    purpose: Purpose,
) -> Result<Option<EmailToken>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM email_tokens WHERE token_hash = $1 AND purpose = $2 RETURNING user_id, email, expires_at",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .fetch_optional(executor)
    .await
}

/// Deletes the tokens that expired before `now`; returns how many.
pub async fn delete_expired(pool: &Pool, now: i64) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM email_tokens WHERE expires_at < $1")
        .bind(now)
        .execute(pool)
        .await
        .map(|result| result.rows_affected())
}
