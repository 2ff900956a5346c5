//! One configured OpenID Connect provider: its metadata (from discovery) and
//! its signing keys (JWKS), both fetched when first needed and cached.
//!
//! The key set is fetched again:
//! - when a token names an unknown `kid` (the provider may have rotated),
//!   but at most once per `KeyTiming::min_refresh_interval`, doubling after
//!   each failure, and counting the attempt before it is made, so that
//!   tokens with made-up key ids cannot turn this service into a load
//!   generator, whether the provider answers or not;
//! - in the background once the set is older than `KeyTiming::max_age`, so
//!   that keys the provider withdrew stop being trusted. Verification with
//!   known keys never waits for a fetch.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{JwkSet, PublicKeyUse},
};
use serde::{Deserialize, de::DeserializeOwned};
use tokio::sync::{Mutex, RwLock};
use url::Url;

use super::outbound::Outbound;

const LEEWAY_SECS: u64 = 30;
/// The longest wait between two fetch attempts after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_mins(10);

/// How often the provider's key set is fetched.
#[derive(Clone, Copy, Debug)]
pub struct KeyTiming {
    /// The least time between two fetch attempts (doubled after failures).
    pub min_refresh_interval: Duration,
    /// A key set older than this is fetched again, in the background.
    pub max_age: Duration,
}

impl Default for KeyTiming {
    fn default() -> Self {
        Self { min_refresh_interval: Duration::from_secs(30), max_age: Duration::from_hours(1) }
    }
}

/// What discovery tells about the provider (OpenID Connect Discovery 1.0).
#[derive(Clone, Debug, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
}

/// The provider client; cheap to clone (its state is shared).
#[derive(Clone)]
pub struct Provider(Arc<Shared>);

struct Shared {
    issuer: String,
    algorithms: Vec<Algorithm>,
    outbound: Outbound,
    timing: KeyTiming,
    metadata: RwLock<Option<Metadata>>,
    keys: RwLock<Keys>,
    /// Held while a fetch runs, so that only one runs at a time.
    fetching: Arc<Mutex<()>>,
}

/// A verification key, with the algorithm its JWK names, if any.
#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    algorithm: Option<Algorithm>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, Key>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    failures: u32,
}

impl Keys {
    fn stale(&self, timing: KeyTiming) -> bool {
        self.fetched_at.is_none_or(|at| at.elapsed() >= timing.max_age)
    }

    /// Whether another fetch may be attempted now: the least interval after
    /// the last attempt, doubled for each failure in a row, up to a cap.
    fn may_fetch(&self, timing: KeyTiming) -> bool {
        let interval = timing.min_refresh_interval;
        let backoff = interval.saturating_mul(1 << self.failures.min(16)).min(MAX_BACKOFF).max(interval);
        self.attempted_at.is_none_or(|at| at.elapsed() >= backoff)
    }
}

impl Provider {
    #[must_use]
    pub fn new(issuer: String, algorithms: Vec<Algorithm>, outbound: Outbound, timing: KeyTiming) -> Self {
        Self(Arc::new(Shared {
            issuer,
            algorithms,
            outbound,
            timing,
            metadata: RwLock::new(None),
            keys: RwLock::new(Keys::default()),
            fetching: Arc::new(Mutex::new(())),
        }))
    }

    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// The provider's metadata, discovered on first use. The document must
    /// name the configured issuer exactly, or it describes someone else.
    pub async fn metadata(&self) -> anyhow::Result<Metadata> {
        self.0.metadata().await
    }

    /// Verifies a JWT the provider signed and returns its claims. `audience`
    /// is who the token must be meant for; `access_token` also requires the
    /// RFC 9068 `typ`, which ID tokens never carry.
    pub async fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
        access_token: bool,
    ) -> anyhow::Result<T> {
        let header = jsonwebtoken::decode_header(token)?;
        if !self.0.algorithms.contains(&header.alg) {
            bail!("algorithm {:?} is not allowed", header.alg);
        }
        if access_token {
            let typ = header.typ.as_deref().map(str::to_ascii_lowercase);
            if !matches!(typ.as_deref(), Some("at+jwt" | "application/at+jwt")) {
                bail!("typ {:?} is not at+jwt", header.typ);
            }
        }
        let kid = header.kid.context("no kid")?;
        let key = self.key(&kid).await?.with_context(|| format!("unknown kid {kid:?}"))?;
        // A key published for one algorithm verifies nothing else.
        if key.algorithm.is_some_and(|named| named != header.alg) {
            bail!("key {kid:?} is for {:?}, not {:?}", key.algorithm, header.alg);
        }
        // The header's algorithm is on the allow-list (checked above), and
        // jsonwebtoken refuses it unless it also fits the key's type.
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.0.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Ok(jsonwebtoken::decode::<T>(token, &key.decoding, &validation)?.claims)
    }

    /// The key for `kid`: from the cached set while it is fresh; a stale set
    /// still serves while a fresh one is fetched in the background; an
    /// unknown `kid` waits for a fetch, when one may be attempted.
    async fn key(&self, kid: &str) -> anyhow::Result<Option<Key>> {
        let timing = self.0.timing;
        let (known, stale, may_fetch) = {
            let keys = self.0.keys.read().await;
            (keys.by_kid.get(kid).cloned(), keys.stale(timing), keys.may_fetch(timing))
        };
        if let Some(key) = known {
            if stale
                && may_fetch
                && let Ok(fetching) = self.0.fetching.clone().try_lock_owned()
            {
                let shared = self.0.clone();
                tokio::spawn(async move {
                    let _fetching = fetching;
                    if let Err(err) = shared.fetch_keys().await {
                        tracing::warn!(issuer = %shared.issuer, error = format!("{err:#}"), "refreshing the provider's keys failed");
                    }
                });
            }
            return Ok(Some(key));
        }
        if !may_fetch {
            return Ok(None);
        }
        // One fetch at a time; whoever waited finds the fresh set.
        let _fetching = self.0.fetching.lock().await;
        if !self.0.keys.read().await.may_fetch(timing) {
            return Ok(self.0.keys.read().await.by_kid.get(kid).cloned());
        }
        self.0.fetch_keys().await?;
        Ok(self.0.keys.read().await.by_kid.get(kid).cloned())
    }
}

impl Shared {
    async fn metadata(&self) -> anyhow::Result<Metadata> {
        if let Some(metadata) = self.metadata.read().await.as_ref() {
            return Ok(metadata.clone());
        }
        let url =
            Url::parse(&format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/')))?;
        let metadata: Metadata = self.outbound.get_json(&url).await.context("OpenID Connect discovery")?;
        if metadata.issuer != self.issuer {
            bail!("discovery names issuer {:?}, expected {:?}", metadata.issuer, self.issuer);
        }
        *self.metadata.write().await = Some(metadata.clone());
        Ok(metadata)
    }

    /// Fetches the key set; call with `fetching` held. The attempt is
    /// recorded before the network call, so a failing provider is not asked
    /// again before the backoff has passed; no lock is held across it.
    async fn fetch_keys(&self) -> anyhow::Result<()> {
        self.keys.write().await.attempted_at = Some(Instant::now());
        let fetched: anyhow::Result<JwkSet> = async {
            let metadata = self.metadata().await?;
            self.outbound.get_json(&metadata.jwks_uri).await.context("fetching the provider's JWKS")
        }
        .await;
        let mut keys = self.keys.write().await;
        let set = match fetched {
            Ok(set) => set,
            Err(err) => {
                keys.failures = keys.failures.saturating_add(1);
                return Err(err);
            }
        };
        keys.by_kid = set
            .keys
            .iter()
            // A key published for encryption never verifies a signature.
            .filter(|jwk| {
                jwk.common.public_key_use.as_ref().is_none_or(|usage| *usage == PublicKeyUse::Signature)
            })
            .filter_map(|jwk| {
                // A named algorithm that is no signature algorithm (one for
                // encryption) leaves the key out.
                let algorithm = match jwk.common.key_algorithm {
                    Some(named) => Some(Algorithm::try_from(named).ok()?),
                    None => None,
                };
                let key = Key { decoding: DecodingKey::from_jwk(jwk).ok()?, algorithm };
                Some((jwk.common.key_id.clone()?, key))
            })
            .collect();
        keys.fetched_at = Some(Instant::now());
        keys.failures = 0;
        tracing::info!(issuer = %self.issuer, keys = keys.by_kid.len(), "fetched the provider's signing keys");
        Ok(())
    }
}
