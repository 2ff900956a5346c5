//! A small bounded map whose entries expire, for the checks every request
//! makes: verified access tokens (`tokens`) and account states
//! (`principal`). Under a flood of distinct keys it forgets the expired
//! entries first, then an arbitrary half, so memory stays bounded whatever
//! the traffic; a forgotten entry only costs the check it saved.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Mutex, PoisonError},
    time::Instant,
};

pub struct ExpiringCache<K, V> {
    capacity: usize,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Hash + Eq, V: Clone> ExpiringCache<K, V> {
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(2), entries: Mutex::new(HashMap::new()) }
    }

    /// The value under `key`, unless it expired.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(key).filter(|(_, expires)| *expires > Instant::now()).map(|(value, _)| value.clone())
    }

    /// Keeps `value` under `key` until `expires`.
    pub fn insert(&self, key: K, value: V, expires: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let now = Instant::now();
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= self.capacity / 2 {
                let mut excess = entries.len() - self.capacity / 2;
                entries.retain(|_, _| {
                    let keep = excess == 0;
                    excess = excess.saturating_sub(1);
                    keep
                });
            }
        }
        entries.insert(key, (value, expires));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn entries_expire_and_a_flood_stays_under_the_capacity() {
        let cache = ExpiringCache::new(100);
        let soon = Instant::now() + Duration::from_millis(30);
        cache.insert("a", 1, soon);
        assert_eq!(cache.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&"a"), None, "expired");
        let later = Instant::now() + Duration::from_mins(1);
        for key in 0..10_000 {
            cache.insert(key.to_string().leak() as &str, key, later);
            assert!(cache.entries.lock().expect("lock").len() <= 100);
        }
    }
}
