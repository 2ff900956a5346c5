//! The `login_throttles` table: password checks counted per account and
//! client address (and per account over all addresses) in fixed windows.
//! Times are unix milliseconds, so windows compare and expire in plain SQL.

use uuid::Uuid;

use super::Pool;

/// Counts one more check of `user_id`'s password from `source` when the
/// window still has room, and reports whether it had. A window older than
/// `window_millis` starts over. One statement, so that however many requests
/// arrive at once, no more than `limit` are ever granted per window.
pub async fn reserve(
    pool: &Pool,
    user_id: Uuid,
    source: &str,
    limit: u32,
    now: i64,
    window_millis: i64,
) -> Result<bool, sqlx::Error> {
    let expired_before = now - window_millis;
    let granted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO login_throttles (user_id, source, attempts, window_start) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (user_id, source) DO UPDATE SET \
           attempts = CASE WHEN login_throttles.window_start <= $4 THEN 1 ELSE login_throttles.attempts + 1 END, \
           window_start = CASE WHEN login_throttles.window_start <= $4 THEN $3 ELSE login_throttles.window_start END \
         WHERE login_throttles.window_start <= $4 OR login_throttles.attempts < $5 \
         RETURNING attempts",
    )
    .bind(user_id)
    .bind(source)
    .bind(now)
    .bind(expired_before)
    .bind(i64::from(limit))
    .fetch_optional(pool)
    .await?;
    Ok(granted.is_some())
}

/// Gives back one check of `source`'s count (a check that proved the
/// password is no guess).
pub async fn release(pool: &Pool, user_id: Uuid, source: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE login_throttles SET attempts = attempts - 1 \
         WHERE user_id = $1 AND source = $2 AND attempts > 0",
    )
    .bind(user_id)
    .bind(source)
    .execute(pool)
    .await
    .map(drop)
}

/// Forgets the count of one source of an account.
pub async fn clear(pool: &Pool, user_id: Uuid, source: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_throttles WHERE user_id = $1 AND source = $2")
        .bind(user_id)
        .bind(source)
        .execute(pool)
        .await
        .map(drop)
}

/// Forgets every count of an account (an administrator's unlock).
pub async fn clear_account(pool: &Pool, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_throttles WHERE user_id = $1").bind(user_id).execute(pool).await.map(drop)
}

/// Deletes windows that ended before `expired_before`; returns how many.
pub async fn delete_expired(pool: &Pool, expired_before: i64) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM login_throttles WHERE window_start <= $1")
        .bind(expired_before)
        .execute(pool)
        .await
        .map(|result| result.rows_affected())
}
