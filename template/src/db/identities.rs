//! The `user_identities` table: which provider identity (issuer, subject)
//! belongs to which account.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Backend, Pool};

pub async fn find_user(pool: &Pool, issuer: &str, subject: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM user_identities WHERE issuer = $1 AND subject = $2")
        .bind(issuer)
        .bind(subject)
        .fetch_optional(pool)
        .await
}

/// Links the identity to `user_id`; `false` when it was linked already (to
/// this account or another).
pub async fn link<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    issuer: &str,
    subject: &str,
    user_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_identities (issuer, subject, user_id, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (issuer, subject) DO NOTHING",
    )
    .bind(issuer)
    .bind(subject)
    .bind(user_id)
    .bind(OffsetDateTime::now_utc())
    .execute(executor)
    .await
    .map(|result| result.rows_affected() == 1)
}
