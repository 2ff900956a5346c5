//! Housekeeping in the background: deletes the rows that can never matter
//! again, so that no table that anonymous or routine requests write to
//! grows without bound. Requests never pay for it.

use std::{sync::Arc, time::Duration};

use time::OffsetDateTime;

use crate::{
    auth::{Auth, unix_now},
    db::{self, Pool},
};

/// How often `spawn` sweeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_mins(5);

/// What one sweep deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub refresh_tokens: u64,
    pub oidc_logins: u64,
    pub login_throttles: u64,
}

/// Deletes expired, revoked and spent refresh tokens, abandoned OpenID
/// Connect logins, and login-throttle windows that ended.
pub async fn sweep(db: &Pool, auth: &Auth) -> Result<Swept, sqlx::Error> {
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    Ok(Swept {
        refresh_tokens: db::refresh_tokens::delete_dead(db, OffsetDateTime::now_utc()).await?,
        oidc_logins: db::oidc_logins::delete_expired(db, now).await?,
        login_throttles: db::login_throttles::delete_expired(db, auth.throttle.expired_before()).await?,
    })
}

/// Sweeps every `SWEEP_INTERVAL` until the process ends; a failed sweep is
/// logged and tried again at the next interval.
pub fn spawn(db: Pool, auth: Arc<Auth>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match sweep(&db, &auth).await {
                Ok(swept) if swept != Swept::default() => tracing::info!(?swept, "deleted rows that expired"),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "the maintenance sweep failed"),
            }
        }
    });
}
