//! The Redis store: the TAT of every key lives in Redis, and one script
//! decides atomically, so every instance sharing the Redis enforces one
//! limit. The script reads Redis's own clock, so instances need not agree
//! on the time. Each call is bounded by a short timeout; the caller falls
//! back when it fails (see `RateLimiter`).

use std::{path::Path, time::Duration};

use anyhow::Context;
use redis::{Client, Script, TlsCertificates, aio::ConnectionManager, aio::ConnectionManagerConfig};

use super::gcra::{Decision, Quota};

/// GCRA as in `gcra::decide`: KEYS[1] the key; ARGV the emission interval
/// and the tolerance, in milliseconds. Returns {allowed, remaining, reset}.
const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if allow_at > now then
  return {0, 0, allow_at - now}
end
local new_tat = tat + emission
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, math.floor((now + tolerance - tat) / emission), new_tat - now}
";

pub struct RedisStore {
    connection: ConnectionManager,
    script: Script,
    prefix: String,
}

impl RedisStore {
    /// A store that connects on first use and reconnects by itself; every
    /// call gives up after `timeout`. A `rediss://` server is verified
    /// against `ca_cert` when given, else against the system's roots.
    pub fn new(url: &str, ca_cert: Option<&Path>, prefix: &str, timeout: Duration) -> anyhow::Result<Self> {
        // The redis crate builds its TLS configuration from the process's
        // default provider: make that aws-lc-rs, as everywhere else here
        // (a no-op when it is set already).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = match ca_cert {
            Some(path) => {
                let root_cert = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let certificates = TlsCertificates { client_tls: None, root_cert: Some(root_cert) };
                Client::build_with_tls(url, certificates)
            }
            None => Client::open(url),
        }
        .context("rate_limit.redis_url")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        Ok(Self {
            connection: ConnectionManager::new_lazy_with_config(client, config)?,
            script: Script::new(GCRA),
            prefix: prefix.to_owned(),
        })
    }

    pub async fn decide(&self, quota: Quota, key: &str) -> redis::RedisResult<Decision> {
        let mut connection = self.connection.clone();
        let (allowed, remaining, reset_ms): (u8, u32, u64) = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(quota.emission_ms())
            .arg(quota.tolerance_ms())
            .invoke_async(&mut connection)
            .await?;
        Ok(Decision { allowed: allowed == 1, remaining, reset_ms })
    }

    /// Whether Redis answers a PING (within the store's timeout).
    pub async fn answers(&self) -> bool {
        let mut connection = self.connection.clone();
        redis::cmd("PING").query_async::<String>(&mut connection).await.is_ok()
    }
}
