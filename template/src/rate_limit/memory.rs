//! The in-memory store: one TAT per key, for a single instance. Its memory
//! is bounded under a flood of distinct keys (every spoofed or rotated
//! address): a key whose quota is whole again is the same as no key and is
//! dropped, and at `max_keys` the map makes room before it grows.

use std::{collections::HashMap, sync::Mutex, time::Instant};

use super::gcra::{self, Decision, Quota};

pub struct MemoryStore {
    started: Instant,
    max_keys: usize,
    tats: Mutex<HashMap<String, u64>>,
}

impl MemoryStore {
    #[must_use]
    pub fn new(max_keys: usize) -> Self {
        Self { started: Instant::now(), max_keys: max_keys.max(1), tats: Mutex::new(HashMap::new()) }
    }

    pub fn decide(&self, quota: Quota, key: &str) -> Decision {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut tats = self.tats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (decision, tat) = gcra::decide(quota, tats.get(key).copied(), now);
        if decision.allowed {
            if !tats.contains_key(key) && tats.len() >= self.max_keys {
                make_room(&mut tats, now, self.max_keys);
            }
            tats.insert(key.to_owned(), tat);
        }
        decision
    }
}

/// Drops the keys that are whole again (their TAT passed); if that is not
/// enough, keeps an arbitrary half, so that a flood costs the flooding keys
/// their limits before it costs the process its memory. Amortized, each
/// insert pays O(1).
fn make_room(tats: &mut HashMap<String, u64>, now: u64, max_keys: usize) {
    tats.retain(|_, tat| *tat > now);
    let mut excess = tats.len().saturating_sub(max_keys / 2);
    if tats.len() >= max_keys {
        tats.retain(|_, _| {
            let keep = excess == 0;
            excess = excess.saturating_sub(1);
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_million_distinct_keys_stay_under_the_cap() {
        let store = MemoryStore::new(100_000);
        let quota = Quota { requests: 10, window: Duration::from_mins(1) };
        for key in 0..1_000_000 {
            assert!(store.decide(quota, &format!("flood:{key}")).allowed);
        }
        let kept = store.tats.lock().expect("lock").len();
        assert!((50_000..=100_000).contains(&kept), "{kept} keys kept");
        let capacity = store.tats.lock().expect("lock").capacity();
        assert!(capacity < 250_000, "the map grew to {capacity} slots");
    }
}
