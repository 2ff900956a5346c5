//! Authentication: who is calling.
//!
//! - `password`: argon2id hashing and the policy for new passwords;
//! - `keys` and `tokens`: the Ed25519 keys and the access tokens they sign;
//! - `sessions`: refresh-token families with rotation and reuse detection;
//! - `accounts`: registration, login, password changes;
//! - `throttle`: how often an account's password may be checked, per client;
//! - `verification` and `recovery`: proving addresses, and "forgot password",
//!   by links sent by mail;
//! - `oidc`: login at an OpenID Connect provider, and its access tokens;
//! - `principal`: who a token stands for, as the account behind it stands now.

pub mod accounts;
mod cache;
pub mod keys;
pub mod oidc;
pub mod password;
mod principal;
pub mod recovery;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod verification;

use std::{
    thread,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

pub use self::{
    accounts::AuthError,
    principal::{
        AccessStates, AuthMethod, AuthenticationError, NoAccount, Principal, Subject, account_changed,
        authenticate,
    },
};
use self::{
    keys::KeySet, oidc::Oidc, password::PasswordHasher, password::PasswordPolicy, sessions::SessionPolicy,
    throttle::ThrottlePolicy, tokens::Tokens,
};
use crate::config::Config;

/// Password checks that may wait per hash running, unless configured: a
/// wait of a few hashes is short, and a longer queue only holds requests
/// that would time out.
const QUEUED_HASHES_PER_HASH: usize = 4;

/// Everything authentication needs, built once at start-up and shared.
pub struct Auth {
    pub tokens: Tokens,
    pub hasher: PasswordHasher,
    pub policy: PasswordPolicy,
    pub sessions: SessionPolicy,
    pub throttle: ThrottlePolicy,
    /// The OpenID Connect provider, when one is configured.
    pub oidc: Option<Oidc>,
    pub access_states: AccessStates,
}

impl Auth {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let auth = &config.auth;
        let keys = KeySet::load(&auth.keys_dir, config.env)?;
        let hashes = auth
            .max_concurrent_hashes
            .unwrap_or_else(|| thread::available_parallelism().map_or(1, usize::from));
        let queued = auth.max_queued_hashes.unwrap_or(hashes * QUEUED_HASHES_PER_HASH);
        Ok(Self {
            tokens: Tokens::new(keys, config.issuer(), config.audience(), auth.access_token_ttl),
            hasher: PasswordHasher::new(hashes, queued)?,
            policy: PasswordPolicy { min_chars: auth.password_min_length },
            sessions: SessionPolicy {
                idle_timeout: auth.refresh_idle_timeout,
                lifetime: auth.refresh_lifetime,
            },
            throttle: ThrottlePolicy {
                per_address: auth.throttle_per_address,
                per_account: auth.throttle_per_account,
                window: auth.throttle_window,
            },
            oidc: Oidc::from_config(config)?,
            access_states: AccessStates::new(auth.account_cache_ttl),
        })
    }
}

#[must_use]
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

/// Unix milliseconds, for windows that must be exact however short.
#[must_use]
pub fn unix_millis() -> i64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

/// 256 random bits from the operating system, base64url: refresh tokens,
/// nonces, browser bindings.
pub(crate) fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The SHA-256 of a random token, which is what gets stored. A fast hash is
/// right here, unlike for passwords: 256 random bits cannot be guessed back
/// from their hash.
pub(crate) fn sha256(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
