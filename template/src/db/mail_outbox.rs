//! The `mail_outbox` table: the mail queue (see `mail`). A worker leases the
//! next due message for as long as a delivery may take, then deletes it once
//! delivered or given up, or sets when to retry it. Times are unix
//! milliseconds.

use uuid::Uuid;

use super::Pool;

/// A message leased to one worker.
#[derive(sqlx::FromRow)]
pub struct Leased {
    pub id: Uuid,
    pub kind: String,
    pub message: String,
    /// Including the one this lease is for.
    pub attempts: i32,
}

/// Adds a message unless `capacity` messages are waiting already; one
/// statement, so concurrent requests cannot overfill it. `false` when full.
pub async fn push(
    pool: &Pool,
    id: Uuid,
    kind: &str,
    message: &str,
    now_ms: i64,
    capacity: usize,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO mail_outbox (id, kind, message, not_before) \
         SELECT $1, $2, $3, $4 WHERE (SELECT COUNT(*) FROM mail_outbox) < $5",
    )
    .bind(id)
    .bind(kind)
    .bind(message)
    .bind(now_ms)
    .bind(i64::try_from(capacity).unwrap_or(i64::MAX))
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Whether a message is due; a read, so that an idle worker takes no write
/// lock.
pub async fn any_due(pool: &Pool, now_ms: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM mail_outbox WHERE not_before <= $1)")
        .bind(now_ms)
        .fetch_one(pool)
        .await
}

/// Leases the oldest due message until `lease_ends_ms`, counting the
/// attempt. The condition is checked again on the row itself, so two
/// workers never hold the same message.
pub async fn lease_next(pool: &Pool, now_ms: i64, lease_ends_ms: i64) -> Result<Option<Leased>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE mail_outbox SET not_before = $2, attempts = attempts + 1 \
         WHERE id = (SELECT id FROM mail_outbox WHERE not_before <= $1 ORDER BY not_before, id LIMIT 1) \
           AND not_before <= $1 \
         RETURNING id, kind, message, attempts",
    )
    .bind(now_ms)
    .bind(lease_ends_ms)
    .fetch_optional(pool)
    .await
}

/// Puts a message back, due again at `not_before_ms`.
pub async fn retry_at(pool: &Pool, id: Uuid, not_before_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE mail_outbox SET not_before = $2 WHERE id = $1")
        .bind(id)
        .bind(not_before_ms)
        .execute(pool)
        .await
        .map(drop)
}

pub async fn remove(pool: &Pool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM mail_outbox WHERE id = $1").bind(id).execute(pool).await.map(drop)
}

/// Up to `limit` messages not sealed with the prefix `sealed_prefix`.
pub async fn sealed_otherwise(
    pool: &Pool,
    sealed_prefix: &str,
    limit: u32,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, message FROM mail_outbox WHERE message NOT LIKE $1 ORDER BY id LIMIT $2")
        .bind(format!("{sealed_prefix}%"))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
}

/// Sets the stored message `id` if it is still `read`; `false` when it was
/// delivered in between.
pub async fn reseal(pool: &Pool, id: Uuid, read: &str, message: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE mail_outbox SET message = $3 WHERE id = $1 AND message = $2")
        .bind(id)
        .bind(read)
        .bind(message)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
}
