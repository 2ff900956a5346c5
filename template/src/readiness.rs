//! Readiness: whether this instance should get traffic. A background task
//! probes each dependency once a second, each probe bounded, and `/readyz`
//! answers at once from the last results: an orchestrator's probe has a
//! deadline of its own (often one second), and a database that hangs must
//! not make it time out instead of reading 503. The same result opens the
//! database's circuit breaker (`http::circuit_breaker`). Mail is judged by
//! the outcome of the last delivery, not probed: a mail server that is
//! down only delays mail, so it degrades the service and never stops it.
//! Shutting down makes the instance not ready at once, so that a load
//! balancer drains it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::{
    db::{self, Pool},
    mail::Mailer,
    rate_limit::RateLimiter,
};

/// How often the dependencies are probed ...
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// ... and how long one probe may take before it counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct Readiness {
    database_down: AtomicBool,
    redis_down: AtomicBool,
    /// The last attempt to deliver mail failed (messages wait meanwhile).
    mail_failing: AtomicBool,
    /// Whether Redis being down stops the service (`on_redis_failure = "deny"`).
    redis_required: AtomicBool,
    draining: AtomicBool,
}

/// What the last probes found.
#[derive(Debug, PartialEq, Eq)]
pub struct Status {
    /// What keeps this instance from taking traffic, by name.
    pub blocking: Vec<&'static str>,
    /// What is down without stopping the service (it works around it).
    pub degraded: Vec<&'static str>,
}

impl Readiness {
    /// Probes in the background until the last handle is dropped or the
    /// pool is closed.
    pub fn start(db: Pool, rate_limits: Arc<RateLimiter>, mail: Arc<Mailer>) -> Arc<Self> {
        let readiness = Arc::new(Self::default());
        readiness.redis_required.store(rate_limits.refuses_without_shared_store(), Ordering::Relaxed);
        let probed = Arc::downgrade(&readiness);
        let mut database = db::Probe::new(db);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PROBE_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = database.closed() => {
                        // The service is stopping; the probe's connection goes with the pool.
                        if let Some(readiness) = probed.upgrade() {
                            readiness.database_down.store(true, Ordering::Relaxed);
                        }
                        return;
                    }
                }
                let database_up = database.ping(PROBE_TIMEOUT).await;
                let redis = tokio::time::timeout(PROBE_TIMEOUT, rate_limits.shared_store_answers()).await;
                let Some(readiness) = probed.upgrade() else { return };
                let was_down = readiness.database_down.swap(!database_up, Ordering::Relaxed);
                match (was_down, database_up) {
                    (false, false) => tracing::error!("the database stopped answering: not ready"),
                    (true, true) => tracing::info!("the database answers again: ready"),
                    _ => {}
                }
                readiness.redis_down.store(matches!(redis, Ok(Some(false)) | Err(_)), Ordering::Relaxed);
                readiness.mail_failing.store(mail.delivery_failing(), Ordering::Relaxed);
            }
        });
        readiness
    }

    /// Whether the last probe found the database down: requests that need
    /// it are then answered at once (`http::circuit_breaker`).
    #[must_use]
    pub fn database_down(&self) -> bool {
        self.database_down.load(Ordering::Relaxed)
    }

    /// From now on, not ready: the service is shutting down.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    #[must_use]
    pub fn status(&self) -> Status {
        let mut status = Status { blocking: Vec::new(), degraded: Vec::new() };
        if self.draining.load(Ordering::Relaxed) {
            status.blocking.push("shutting down");
        }
        if self.database_down() {
            status.blocking.push("database");
        }
        if self.redis_down.load(Ordering::Relaxed) {
            let list = if self.redis_required.load(Ordering::Relaxed) {
                &mut status.blocking
            } else {
                &mut status.degraded
            };
            list.push("redis");
        }
        if self.mail_failing.load(Ordering::Relaxed) {
            // Mail waits in the outbox and is retried: never a reason to stop.
            status.degraded.push("mail");
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutting_down_and_the_database_block_redis_only_when_required_and_mail_never() {
        let readiness = Readiness::default();
        assert_eq!(readiness.status(), Status { blocking: vec![], degraded: vec![] });
        readiness.redis_down.store(true, Ordering::Relaxed);
        assert_eq!(readiness.status(), Status { blocking: vec![], degraded: vec!["redis"] });
        readiness.redis_required.store(true, Ordering::Relaxed);
        readiness.database_down.store(true, Ordering::Relaxed);
        readiness.mail_failing.store(true, Ordering::Relaxed);
        readiness.drain();
        let blocking = vec!["shutting down", "database", "redis"];
        assert_eq!(readiness.status(), Status { blocking, degraded: vec!["mail"] });
    }
}
