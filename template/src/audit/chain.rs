//! The hash chain: each row's hash covers the previous row's hash and the
//! row's own content, in one canonical form, so that altering, removing or
//! reordering a row breaks every link after it. `verify` walks the chain
//! from the last pruning point to the head.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::{self, Pool, audit::AuditRow};

/// Rows read at once while verifying.
const BATCH: u32 = 1_000;

/// What the hash covers: every column but the hash itself, in this order,
/// as JSON. `details` is the stored text, so the hash never depends on how
/// a JSON library orders keys.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    prev_hash: &'a str,
    occurred_at: &'a str,
    name: &'a str,
    outcome: &'a str,
    actor_kind: &'a str,
    actor_id: Option<&'a str>,
    actor_client: Option<&'a str>,
    actor_method: Option<&'a str>,
    source: Option<&'a str>,
    user_agent: Option<&'a str>,
    request_id: Option<&'a str>,
    target_kind: Option<&'a str>,
    target_id: Option<&'a str>,
    details: &'a str,
    count: i64,
}

/// The hash `row` must carry at its place (`seq`, `prev_hash`), lowercase hex.
#[must_use]
pub fn hash(row: &AuditRow) -> String {
    let canonical = Canonical {
        seq: row.seq,
        prev_hash: &row.prev_hash,
        occurred_at: &row.occurred_at,
        name: &row.name,
        outcome: &row.outcome,
        actor_kind: &row.actor_kind,
        actor_id: row.actor_id.as_deref(),
        actor_client: row.actor_client.as_deref(),
        actor_method: row.actor_method.as_deref(),
        source: row.source.as_deref(),
        user_agent: row.user_agent.as_deref(),
        request_id: row.request_id.as_deref(),
        target_kind: row.target_kind.as_deref(),
        target_id: row.target_id.as_deref(),
        details: &row.details,
        count: row.count,
    };
    let json = serde_json::to_vec(&canonical).unwrap_or_default();
    format!("{:x}", Sha256::digest(json))
}

/// A chain that verified: how many rows, and the head's hash, which an
/// operator may keep elsewhere to detect a rewrite of the whole chain.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub rows: u64,
    pub first_seq: i64,
    pub head_hash: String,
}

/// The first link that does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Broken {
    #[error("row {seq} is missing (the next row present is {found})")]
    Missing { seq: i64, found: i64 },
    #[error("row {seq} does not follow the row before it (its prev_hash is not that row's hash)")]
    Unlinked { seq: i64 },
    #[error("row {seq} was altered (its content does not match its hash)")]
    Altered { seq: i64 },
    #[error("the chain ends at row {last} but its head says {head}: rows were removed from its end")]
    Truncated { last: i64, head: i64 },
    #[error("the head's hash does not match row {seq}")]
    HeadMismatch { seq: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Broken(#[from] Broken),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Walks the whole chain, in batches, and reports the first broken link.
pub async fn verify(db: &Pool) -> Result<Verified, VerifyError> {
    let head = db::audit::head(db).await?;
    let (mut expected_seq, mut expected_prev) = (head.pruned_upto + 1, head.pruned_hash.clone());
    let mut rows = 0_u64;
    loop {
        let batch = db::audit::chain_after(db, expected_seq - 1, BATCH).await?;
        for row in &batch {
            check_link(row, expected_seq, &expected_prev)?;
            expected_prev.clone_from(&row.hash);
            expected_seq += 1;
            rows += 1;
        }
        if batch.len() < BATCH as usize {
            break;
        }
    }
    let last = expected_seq - 1;
    if last != head.last_seq {
        return Err(Broken::Truncated { last, head: head.last_seq }.into());
    }
    if expected_prev != head.last_hash {
        return Err(Broken::HeadMismatch { seq: last }.into());
    }
    Ok(Verified { rows, first_seq: head.pruned_upto + 1, head_hash: head.last_hash })
}

/// Whether `row` is the link expected at `seq` after a row hashed `prev`.
fn check_link(row: &AuditRow, seq: i64, prev: &str) -> Result<(), Broken> {
    if row.seq != seq {
        return Err(Broken::Missing { seq, found: row.seq });
    }
    if row.prev_hash != prev {
        return Err(Broken::Unlinked { seq });
    }
    if hash(row) != row.hash {
        return Err(Broken::Altered { seq });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `prev_hash` of the first row ever, as the migration writes it.
    const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn row(seq: i64, prev: &str) -> AuditRow {
        let mut row = AuditRow {
            seq,
            occurred_at: "2026-11-29T10:00:00.000000Z".to_owned(),
            name: "auth.login.succeeded".to_owned(),
            outcome: "success".to_owned(),
            actor_kind: "account".to_owned(),
            actor_id: Some("0193a3c5-0000-7000-8000-000000000001".to_owned()),
            actor_client: None,
            actor_method: Some("password".to_owned()),
            source: Some("192.0.2.1".to_owned()),
            user_agent: None,
            request_id: None,
            target_kind: None,
            target_id: None,
            details: "{}".to_owned(),
            count: 1,
            prev_hash: prev.to_owned(),
            hash: String::new(),
        };
        row.hash = hash(&row);
        row
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let original = row(1, GENESIS);
        let mut altered = original.clone();
        altered.source = Some("192.0.2.2".to_owned());
        assert_ne!(hash(&altered), original.hash);
        let mut renumbered = original.clone();
        renumbered.seq = 2;
        assert_ne!(hash(&renumbered), original.hash);
        assert_eq!(check_link(&original, 1, GENESIS), Ok(()));
        assert_eq!(check_link(&altered, 1, GENESIS), Err(Broken::Altered { seq: 1 }));
        let next = row(2, &original.hash);
        assert_eq!(check_link(&next, 2, &original.hash), Ok(()));
        assert_eq!(check_link(&next, 2, GENESIS), Err(Broken::Unlinked { seq: 2 }));
        assert_eq!(check_link(&next, 1, GENESIS), Err(Broken::Missing { seq: 1, found: 2 }));
    }
}
