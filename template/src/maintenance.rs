//! Housekeeping in the background: deletes the rows that can never matter
//! again, so that no table that anonymous or routine requests write to
//! grows without bound. Requests never pay for it.

use std::time::Duration;

use time::OffsetDateTime;

use crate::{
    auth::{unix_millis, unix_now},
    db::{self, Pool},
};

/// How often `spawn` sweeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_mins(5);

/// What one sweep deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub refresh_tokens: u64,
    pub oidc_logins: u64,
    pub email_tokens: u64,
    pub window_counters: u64,
}

/// Deletes expired, revoked and spent refresh tokens, abandoned OpenID
/// Connect logins, mailed tokens nobody used, and counters whose window
/// ended.
pub async fn sweep(db: &Pool) -> Result<Swept, sqlx::Error> {
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    Ok(Swept {
        refresh_tokens: db::refresh_tokens::delete_dead(db, OffsetDateTime::now_utc()).await?,
        oidc_logins: db::oidc_logins::delete_expired(db, now).await?,
        email_tokens: db::email_tokens::delete_expired(db, now).await?,
        window_counters: db::window_counters::delete_ended(db, unix_millis()).await?,
    })
}

/// Sweeps every `SWEEP_INTERVAL` until the process ends; a failed sweep is
/// logged and tried again at the next interval.
pub fn spawn(db: Pool) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match sweep(&db).await {
                Ok(swept) if swept != Swept::default() => tracing::info!(?swept, "deleted rows that expired"),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "the maintenance sweep failed"),
            }
        }
    });
}
