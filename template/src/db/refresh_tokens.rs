//! The `refresh_tokens` table: one row per refresh token ever issued, grouped
//! in families (one per login). Only the SHA-256 of a token is stored.

use time::OffsetDateTime;
use uuid::Uuid;

use super::Backend;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RefreshTokenRow {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub auth_method: String,
    pub expires_at: OffsetDateTime,
    pub family_expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

pub struct NewRefreshToken<'a> {
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub token_hash: &'a [u8],
    pub auth_method: &'a str,
    pub expires_at: OffsetDateTime,
    pub family_expires_at: OffsetDateTime,
}

pub async fn insert<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    token: NewRefreshToken<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens \
         (id, family_id, user_id, token_hash, auth_method, created_at, expires_at, family_expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::new_v4())
    .bind(token.family_id)
    .bind(token.user_id)
    .bind(token.token_hash)
    .bind(token.auth_method)
    .bind(OffsetDateTime::now_utc())
    .bind(token.expires_at)
    .bind(token.family_expires_at)
    .execute(executor)
    .await
    .map(drop)
}

/// The columns of `RefreshTokenRow`.
macro_rules! token_columns {
    () => {
        "id, family_id, user_id, auth_method, expires_at, family_expires_at, used_at, revoked_at"
    };
}

pub async fn find_by_hash<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    token_hash: &[u8],
) -> Result<Option<RefreshTokenRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", token_columns!(), " FROM refresh_tokens WHERE token_hash = $1"))
        .bind(token_hash)
        .fetch_optional(executor)
        .await
}

pub async fn find_by_id<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    id: Uuid,
) -> Result<Option<RefreshTokenRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", token_columns!(), " FROM refresh_tokens WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// Marks a live token as exchanged. `false` when it was already used or
/// revoked, which is how a concurrent replay of the same token shows up.
pub async fn mark_used<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(OffsetDateTime::now_utc())
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Revokes every token of a family (one login's session); returns how many
/// were still live.
pub async fn revoke_family<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    family_id: Uuid,
) -> Result<u64, sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
        .bind(family_id)
        .bind(OffsetDateTime::now_utc())
        .execute(executor)
        .await
        .map(|result| result.rows_affected())
}

/// Revokes every token of every session of a user.
pub async fn revoke_user<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    user_id: Uuid,
) -> Result<u64, sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .bind(OffsetDateTime::now_utc())
        .execute(executor)
        .await
        .map(|result| result.rows_affected())
}

/// Deletes the rows that can never matter again: tokens of families past
/// their lifetime, revoked tokens, and used tokens past their own expiry (a
/// replay of one would be refused as expired anyway). Returns how many.
///
/// Times compare in SQL here, unlike elsewhere: SQLite stores them as RFC
/// 3339 text whose sub-second digits vary, which orders correctly to the
/// second, and a sweep needs no finer boundary.
pub async fn delete_dead(pool: &super::Pool, now: OffsetDateTime) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "DELETE FROM refresh_tokens WHERE family_expires_at < $1 OR revoked_at IS NOT NULL \
         OR (used_at IS NOT NULL AND expires_at < $1)",
    )
    .bind(now)
    .execute(pool)
    .await
    .map(|result| result.rows_affected())
}
