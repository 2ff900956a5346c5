//! Readiness: whether this instance should get traffic. A background task
//! probes each dependency once a second, each probe bounded, and `/readyz`
//! answers at once from the last results: an orchestrator's probe has a
//! deadline of its own (often one second), and a database that hangs must
//! not make it time out instead of reading 503. Shutting down makes the
//! instance not ready at once, so that a load balancer drains it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::{
    db::{self, Pool},
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
    /// Probes in the background until the last handle is dropped.
    pub fn start(db: Pool, rate_limits: Arc<RateLimiter>) -> Arc<Self> {
        let readiness = Arc::new(Self::default());
        readiness.redis_required.store(rate_limits.refuses_without_shared_store(), Ordering::Relaxed);
        let probed = Arc::downgrade(&readiness);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PROBE_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let database = tokio::time::timeout(PROBE_TIMEOUT, db::ping(&db)).await;
                let redis = tokio::time::timeout(PROBE_TIMEOUT, rate_limits.shared_store_answers()).await;
                let Some(readiness) = probed.upgrade() else { return };
                readiness.database_down.store(!matches!(database, Ok(Ok(()))), Ordering::Relaxed);
                readiness.redis_down.store(matches!(redis, Ok(Some(false)) | Err(_)), Ordering::Relaxed);
            }
        });
        readiness
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
        if self.database_down.load(Ordering::Relaxed) {
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
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutting_down_and_the_database_block_while_redis_blocks_only_when_required() {
        let readiness = Readiness::default();
        assert_eq!(readiness.status(), Status { blocking: vec![], degraded: vec![] });
        readiness.redis_down.store(true, Ordering::Relaxed);
        assert_eq!(readiness.status(), Status { blocking: vec![], degraded: vec!["redis"] });
        readiness.redis_required.store(true, Ordering::Relaxed);
        readiness.database_down.store(true, Ordering::Relaxed);
        readiness.drain();
        let blocking = vec!["shutting down", "database", "redis"];
        assert_eq!(readiness.status(), Status { blocking, degraded: vec![] });
    }
}
