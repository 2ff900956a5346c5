//! Authentication: who is calling.
//!
//! - `password`: argon2id hashing and the policy for new passwords;
//! - `keys` and `tokens`: the Ed25519 keys and the access tokens they sign;
//! - `sessions`: refresh-token families with rotation and reuse detection;
//! - `accounts`: registration, login with lockout, password changes;
//! - `principal`: the extractor that turns a bearer token into a `Principal`.

pub mod accounts;
pub mod keys;
pub mod password;
mod principal;
pub mod sessions;
pub mod tokens;

use std::{
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub use self::{
    accounts::AuthError,
    principal::{AuthMethod, Principal},
};
use self::{
    accounts::LockoutPolicy, keys::KeySet, password::PasswordHasher, password::PasswordPolicy,
    sessions::SessionPolicy, tokens::Tokens,
};
use crate::config::Config;

/// Everything authentication needs, built once at start-up and shared.
pub struct Auth {
    pub tokens: Tokens,
    pub hasher: PasswordHasher,
    pub policy: PasswordPolicy,
    pub sessions: SessionPolicy,
    pub lockout: LockoutPolicy,
}

impl Auth {
    pub async fn new(config: &Config) -> anyhow::Result<Self> {
        let auth = &config.auth;
        let keys = KeySet::load(&auth.keys_dir, config.env)?;
        let hashes = auth
            .max_concurrent_hashes
            .unwrap_or_else(|| thread::available_parallelism().map_or(1, usize::from));
        Ok(Self {
            tokens: Tokens::new(keys, config.issuer(), config.audience(), auth.access_token_ttl()),
            hasher: PasswordHasher::new(hashes).await?,
            policy: PasswordPolicy { min_chars: auth.password_min_length },
            sessions: SessionPolicy {
                idle_timeout: Duration::from_secs(auth.refresh_idle_timeout_secs),
                lifetime: Duration::from_secs(auth.refresh_lifetime_secs),
            },
            lockout: LockoutPolicy {
                threshold: auth.lockout_threshold,
                base: Duration::from_secs(auth.lockout_base_secs),
            },
        })
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}
