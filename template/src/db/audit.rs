//! The `audit_events` table and its head (see `audit`). Appends from every
//! instance form one chain because each takes the head row's lock first;
//! the database refuses updates and deletes (migration `0006_audit.sql`),
//! except deletes up to the point `prune` records.

use sqlx::FromRow;

use super::{Pool, Tx};

/// One event as stored, with its place in the chain.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub occurred_at: String,
    pub name: String,
    pub outcome: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_client: Option<String>,
    pub actor_method: Option<String>,
    pub source: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub details: String,
    pub count: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// The head of the chain, and how far it was pruned.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct Head {
    pub last_seq: i64,
    pub last_hash: String,
    pub pruned_upto: i64,
    pub pruned_hash: String,
}

/// The columns, in `AuditRow` order; a macro, so that queries stay literals.
macro_rules! columns {
    () => {
        "seq, occurred_at, name, outcome, actor_kind, actor_id, actor_client, actor_method, source, \
         user_agent, request_id, target_kind, target_id, details, count, prev_hash, hash"
    };
}

/// Appends `row` (its `seq`, `prev_hash` and `hash` are filled here) as the
/// next link: `hash_of` computes the hash of the row at its place.
pub async fn append(
    tx: &mut Tx<'_>,
    mut row: AuditRow,
    hash_of: impl Fn(&AuditRow) -> String,
) -> Result<AuditRow, sqlx::Error> {
    // Writing first takes the head's lock at once (on SQLite, the write
    // lock, without a read lock to upgrade): concurrent appends wait here.
    let (seq, prev_hash): (i64, String) = sqlx::query_as(
        "UPDATE audit_head SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq, last_hash",
    )
    .fetch_one(&mut **tx)
    .await?;
    row.seq = seq;
    row.prev_hash = prev_hash;
    row.hash = hash_of(&row);
    sqlx::query(concat!(
        "INSERT INTO audit_events (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    ))
    .bind(row.seq)
    .bind(&row.occurred_at)
    .bind(&row.name)
    .bind(&row.outcome)
    .bind(&row.actor_kind)
    .bind(&row.actor_id)
    .bind(&row.actor_client)
    .bind(&row.actor_method)
    .bind(&row.source)
    .bind(&row.user_agent)
    .bind(&row.request_id)
    .bind(&row.target_kind)
    .bind(&row.target_id)
    .bind(&row.details)
    .bind(row.count)
    .bind(&row.prev_hash)
    .bind(&row.hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET last_hash = $1 WHERE id = 1")
        .bind(&row.hash)
        .execute(&mut **tx)
        .await?;
    Ok(row)
}

pub async fn head(db: &Pool) -> Result<Head, sqlx::Error> {
    sqlx::query_as("SELECT last_seq, last_hash, pruned_upto, pruned_hash FROM audit_head WHERE id = 1")
        .fetch_one(db)
        .await
}

/// Up to `limit` rows after `after`, in chain order.
pub async fn chain_after(db: &Pool, after: i64, limit: u32) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", columns!(), " FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(db)
        .await
}

/// What a query of the trail asks for; every filter is optional.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub actor_id: Option<&'a str>,
    pub name: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub target_id: Option<&'a str>,
    /// RFC 3339 bounds, compared as the stored text (UTC, fixed width).
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    /// Newest first: rows before this `seq`.
    pub before: Option<i64>,
}

/// Rows matching `filter`, newest first, at most `limit`.
pub async fn find(db: &Pool, filter: &Filter<'_>, limit: u32) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM audit_events \
         WHERE ($1 IS NULL OR actor_id = $1) AND ($2 IS NULL OR name = $2) AND ($3 IS NULL OR outcome = $3) \
           AND ($4 IS NULL OR target_id = $4) AND ($5 IS NULL OR occurred_at >= $5) \
           AND ($6 IS NULL OR occurred_at < $6) AND ($7 IS NULL OR seq < $7) \
         ORDER BY seq DESC LIMIT $8"
    ))
    .bind(filter.actor_id)
    .bind(filter.name)
    .bind(filter.outcome)
    .bind(filter.target_id)
    .bind(filter.since)
    .bind(filter.until)
    .bind(filter.before)
    .bind(i64::from(limit))
    .fetch_all(db)
    .await
}

/// Locks the head and returns it: the start of a prune, which must not run
/// beside an append.
pub async fn lock_head(tx: &mut Tx<'_>) -> Result<Head, sqlx::Error> {
    sqlx::query_as(
        "UPDATE audit_head SET last_seq = last_seq WHERE id = 1 \
         RETURNING last_seq, last_hash, pruned_upto, pruned_hash",
    )
    .fetch_one(&mut **tx)
    .await
}

/// The newest row that occurred before `cutoff` (RFC 3339).
pub async fn last_before(tx: &mut Tx<'_>, cutoff: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT seq, hash FROM audit_events WHERE occurred_at < $1 ORDER BY seq DESC LIMIT 1")
        .bind(cutoff)
        .fetch_optional(&mut **tx)
        .await
}

/// Records that rows up to `upto` (whose hash was `hash`) are pruned, then
/// deletes them: the database lets deletes through only up to that point.
pub async fn prune_upto(tx: &mut Tx<'_>, upto: i64, hash: &str) -> Result<u64, sqlx::Error> {
    sqlx::query("UPDATE audit_head SET pruned_upto = $1, pruned_hash = $2 WHERE id = 1")
        .bind(upto)
        .bind(hash)
        .execute(&mut **tx)
        .await?;
    let deleted =
        sqlx::query("DELETE FROM audit_events WHERE seq <= $1").bind(upto).execute(&mut **tx).await?;
    Ok(deleted.rows_affected())
}
