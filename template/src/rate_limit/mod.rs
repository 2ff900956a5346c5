//! Rate limits: how many requests one client may make per window, by class
//! of route. Each row of `authz::ROUTES` names its [`Class`]; each class's
//! quota is configuration (`[rate_limit]`); `http::policy` charges every
//! request to its keys before the handler runs.
//!
//! The algorithm is GCRA (`gcra`): one number per key, smooth, no burst at
//! window edges. The store is this process's memory (`memory`), or Redis
//! (`redis`) when configured, so that every instance enforces one shared
//! limit. While Redis fails, the limiter counts in memory or refuses, as
//! configured, says so once per interval rather than once per request,
//! and goes back to Redis as soon as it answers.

mod gcra;
mod memory;
mod redis;

use std::{
    net::IpAddr,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use ipnet::Ipv6Net;
use sha2::{Digest, Sha256};

pub use self::gcra::{Decision, Quota};
use self::{memory::MemoryStore, redis::RedisStore};
use crate::config::{OnRedisFailure, RateLimitConfig};

/// The limit a route belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Never limited: the health probes, which orchestrators must reach.
    Unlimited,
    /// Per client address.
    Anonymous,
    /// Per principal, once authenticated.
    Authenticated,
    /// Strict: sessions and passwords, per address and per account.
    Credentials,
    /// Strict: routes that send mail, per address and per account.
    Mail,
}

impl Class {
    /// The policy name in the `RateLimit` header fields.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Unlimited => "unlimited",
            Self::Anonymous => "anonymous",
            Self::Authenticated => "authenticated",
            Self::Credentials => "credentials",
            Self::Mail => "mail",
        }
    }
}

/// Whom a request is counted against.
#[derive(Clone, Copy, Debug)]
pub enum Key<'a> {
    /// A client address. IPv6 counts by its /64, the block one subscriber
    /// usually holds, so that rotating through it gains nothing.
    Address(IpAddr),
    /// An account, or another principal, by a stable name. Stored hashed,
    /// so that Redis holds no email addresses.
    Account(&'a str),
}

impl Key<'_> {
    fn render(self, class: Class) -> String {
        match self {
            Self::Address(IpAddr::V4(address)) => format!("{}:ip:{address}", class.name()),
            Self::Address(IpAddr::V6(address)) => {
                let block = Ipv6Net::new(address, 64).map_or(address, |net| net.network());
                format!("{}:ip:{block}/64", class.name())
            }
            Self::Account(name) => format!("{}:account:{:x}", class.name(), Sha256::digest(name.as_bytes())),
        }
    }
}

/// One request counted against one key, and what came of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge {
    pub class: Class,
    pub quota: Quota,
    pub decision: Decision,
}

/// Redis did not answer in time and `on_redis_failure` is `deny`.
#[derive(Debug, thiserror::Error)]
#[error("the rate-limit store is unavailable")]
pub struct StoreUnavailable;

pub struct RateLimiter {
    config: RateLimitConfig,
    memory: MemoryStore,
    shared: Option<RedisStore>,
    outage: Outage,
}

impl RateLimiter {
    /// A limiter for `config`. With Redis it connects on first use, so a
    /// Redis that is down at start-up delays nothing.
    pub fn new(config: &RateLimitConfig) -> anyhow::Result<Self> {
        let shared = config
            .redis_url
            .as_ref()
            .map(|url| {
                let ca_cert = config.redis_ca_cert.as_deref();
                RedisStore::new(url.expose(), ca_cert, &config.redis_key_prefix, config.redis_timeout)
            })
            .transpose()?;
        Ok(Self {
            config: config.clone(),
            memory: MemoryStore::new(config.max_keys),
            shared,
            outage: Outage::new(config.failure_log_interval),
        })
    }

    /// Whether the shared store (Redis) answers; `None` without one.
    pub async fn shared_store_answers(&self) -> Option<bool> {
        Some(self.shared.as_ref()?.answers().await)
    }

    /// Whether limited requests are refused while the shared store is down
    /// (`on_redis_failure = "deny"`): its outage is then the service's.
    #[must_use]
    pub fn refuses_without_shared_store(&self) -> bool {
        self.config.on_redis_failure == OnRedisFailure::Deny
    }

    /// The quota of `class`; `None` for routes that are never limited.
    #[must_use]
    pub fn quota(&self, class: Class) -> Option<Quota> {
        match class {
            Class::Unlimited => None,
            Class::Anonymous => Some(self.config.anonymous),
            Class::Authenticated => Some(self.config.authenticated),
            Class::Credentials => Some(self.config.credentials),
            Class::Mail => Some(self.config.mail),
        }
    }

    /// Counts one request of `class` against `key`. `Ok(None)` when the
    /// class is unlimited; the charge says whether the request may pass.
    pub async fn charge(&self, class: Class, key: Key<'_>) -> Result<Option<Charge>, StoreUnavailable> {
        let Some(quota) = self.quota(class) else { return Ok(None) };
        let key = key.render(class);
        let decision = match &self.shared {
            None => self.memory.decide(quota, &key),
            Some(_) if self.outage.resting() => self.fall_back(quota, &key)?,
            Some(redis) => {
                // The store's own timeouts bound each attempt; this bounds
                // the whole call, reconnection included.
                match tokio::time::timeout(self.config.redis_timeout, redis.decide(quota, &key)).await {
                    Ok(Ok(decision)) => {
                        self.outage.ended();
                        decision
                    }
                    Ok(Err(err)) => {
                        self.outage.failed(&err.to_string(), self.config.on_redis_failure);
                        self.fall_back(quota, &key)?
                    }
                    Err(_) => {
                        let error = "no answer within rate_limit.redis_timeout_ms";
                        self.outage.failed(error, self.config.on_redis_failure);
                        self.fall_back(quota, &key)?
                    }
                }
            }
        };
        Ok(Some(Charge { class, quota, decision }))
    }

    /// The decision while Redis cannot give one.
    fn fall_back(&self, quota: Quota, key: &str) -> Result<Decision, StoreUnavailable> {
        self.outage.answered_without_redis.fetch_add(1, Ordering::Relaxed);
        match self.config.on_redis_failure {
            OnRedisFailure::Memory => Ok(self.memory.decide(quota, key)),
            OnRedisFailure::Deny => Err(StoreUnavailable),
        }
    }
}

/// How long after a failure requests skip Redis altogether, so that an
/// outage costs one request the timeout now and then, not every request.
const REST_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Tracks a Redis outage: logs it once per interval, with the number of
/// requests it affected, and its end once after each of those lines (a
/// line per request would turn an outage into a flood of logs); and lets
/// Redis rest briefly after each failure.
struct Outage {
    interval: Duration,
    last_logged: Mutex<Option<Instant>>,
    last_failure: Mutex<Option<Instant>>,
    answered_without_redis: AtomicU64,
    failing: AtomicBool,
}

impl Outage {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_logged: Mutex::new(None),
            last_failure: Mutex::new(None),
            answered_without_redis: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        }
    }

    fn resting(&self) -> bool {
        let last_failure = self.last_failure.lock().unwrap_or_else(PoisonError::into_inner);
        last_failure.is_some_and(|at| at.elapsed() < REST_AFTER_FAILURE)
    }

    fn failed(&self, error: &str, on_failure: OnRedisFailure) {
        *self.last_failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let mut last_logged = self.last_logged.lock().unwrap_or_else(PoisonError::into_inner);
        if last_logged.is_some_and(|at| at.elapsed() < self.interval) {
            return;
        }
        *last_logged = Some(Instant::now());
        // The requests answered without Redis since the last line, this one
        // included (it falls back right after).
        let requests_without_redis = self.answered_without_redis.swap(0, Ordering::Relaxed) + 1;
        self.failing.store(true, Ordering::Relaxed);
        let meanwhile = match on_failure {
            OnRedisFailure::Memory => "counting in this instance's memory",
            OnRedisFailure::Deny => "refusing limited requests",
        };
        tracing::warn!(error, requests_without_redis, meanwhile, "rate-limit store (Redis) unavailable");
    }

    fn ended(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("rate-limit store (Redis) answers again: limits are shared again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64_block_and_accounts_are_hashed() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("address");
        let other: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("address");
        assert_eq!(Key::Address(one).render(Class::Anonymous), Key::Address(other).render(Class::Anonymous));
        assert_eq!(Key::Address(one).render(Class::Anonymous), "anonymous:ip:2001:db8:1:2::/64");
        let account = Key::Account("alice@example.com").render(Class::Credentials);
        assert!(account.starts_with("credentials:account:") && !account.contains("alice"), "{account}");
    }
}
