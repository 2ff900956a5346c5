//! The `window_counters` table: counts in fixed windows, each under a key
//! (see `auth::throttle` and `mail`). Times are unix milliseconds, so that
//! windows compare and expire in plain SQL.

use super::Pool;

/// Counts one more use under `key` when its window still has room, and
/// reports whether it had; a window that ended starts over, `window_ms`
/// long. One statement, so that however many requests arrive at once, no
/// more than `limit` are ever granted per window.
pub async fn reserve(
    pool: &Pool,
    key: &str,
    limit: u32,
    now_ms: i64,
    window_ms: i64,
) -> Result<bool, sqlx::Error> {
    let granted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO window_counters (key, count, window_ends) VALUES ($1, 1, $2) \
         ON CONFLICT (key) DO UPDATE SET \
           count = CASE WHEN window_counters.window_ends <= $3 THEN 1 ELSE window_counters.count + 1 END, \
           window_ends = CASE WHEN window_counters.window_ends <= $3 THEN $2 ELSE window_counters.window_ends END \
         WHERE window_counters.window_ends <= $3 OR window_counters.count < $4 \
         RETURNING count",
    )
    .bind(key)
    .bind(now_ms.saturating_add(window_ms))
    .bind(now_ms)
    .bind(i64::from(limit))
    .fetch_optional(pool)
    .await?;
    Ok(granted.is_some())
}

/// Gives back one use under `key`.
pub async fn release(pool: &Pool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE window_counters SET count = count - 1 WHERE key = $1 AND count > 0")
        .bind(key)
        .execute(pool)
        .await
        .map(drop)
}

/// Forgets the count under `key`.
pub async fn clear(pool: &Pool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM window_counters WHERE key = $1").bind(key).execute(pool).await.map(drop)
}

/// Forgets every count whose key starts with `prefix` (no `%` or `_` in it).
pub async fn clear_prefix(pool: &Pool, prefix: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM window_counters WHERE key LIKE $1")
        .bind(format!("{prefix}%"))
        .execute(pool)
        .await
        .map(drop)
}

/// Deletes the counts whose window ended; returns how many.
pub async fn delete_ended(pool: &Pool, now_ms: i64) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM window_counters WHERE window_ends <= $1")
        .bind(now_ms)
        .execute(pool)
        .await
        .map(|result| result.rows_affected())
}
