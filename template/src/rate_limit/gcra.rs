//! GCRA, the generic cell rate algorithm: a token bucket kept as one number
//! per key, the theoretical arrival time (TAT) of the next request. A quota
//! of `n` requests per window lets `n` through at once and then one every
//! `window / n`, smoothly, with no burst at window edges. The Redis store
//! runs the same formula in a script (`redis.rs`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `requests` per `window`; in configuration `{ requests = 10, window_secs = 60 }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub requests: u32,
    #[serde(rename = "window_secs", with = "crate::config::seconds")]
    pub window: Duration,
}

impl Quota {
    /// The time one request costs: the window shared out.
    #[must_use]
    pub fn emission_ms(&self) -> u64 {
        (u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX) / u64::from(self.requests.max(1))).max(1)
    }

    /// How far the TAT may run ahead of now: room for a full burst.
    #[must_use]
    pub fn tolerance_ms(&self) -> u64 {
        self.emission_ms() * u64::from(self.requests.saturating_sub(1))
    }
}

/// One decision, with what the `RateLimit` header fields tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests left at once.
    pub remaining: u32,
    /// Milliseconds until the quota is whole again (allowed), or until the
    /// next request may pass (refused).
    pub reset_ms: u64,
}

/// The decision for a request at `now` (ms) on a key whose TAT is `tat`,
/// and the TAT to store (unchanged when refused).
#[must_use]
pub fn decide(quota: Quota, tat: Option<u64>, now: u64) -> (Decision, u64) {
    let (emission, tolerance) = (quota.emission_ms(), quota.tolerance_ms());
    let tat = tat.unwrap_or(now).max(now);
    let allow_at = tat.saturating_sub(tolerance);
    if allow_at > now {
        return (Decision { allowed: false, remaining: 0, reset_ms: allow_at - now }, tat);
    }
    let new_tat = tat + emission;
    let remaining = u32::try_from((now + tolerance - tat) / emission).unwrap_or(u32::MAX);
    (Decision { allowed: true, remaining, reset_ms: new_tat - now }, new_tat)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: Quota = Quota { requests: 3, window: Duration::from_secs(3) };

    #[test]
    fn a_burst_of_the_quota_passes_then_one_per_emission_interval() {
        let (mut tat, now) = (None, 10_000);
        for left in [2, 1, 0] {
            let (decision, next) = decide(QUOTA, tat, now);
            assert!(decision.allowed && decision.remaining == left, "{decision:?}");
            tat = Some(next);
        }
        let (refused, same) = decide(QUOTA, tat, now);
        assert_eq!(refused, Decision { allowed: false, remaining: 0, reset_ms: 1_000 });
        assert_eq!(Some(same), tat, "a refusal costs nothing");
        let (later, _) = decide(QUOTA, tat, now + 1_000);
        assert!(later.allowed && later.remaining == 0, "one interval later, one more: {later:?}");
        let (rested, _) = decide(QUOTA, tat, now + 3_000);
        assert_eq!(rested.remaining, 2, "a full window later, the burst is back");
    }
}
