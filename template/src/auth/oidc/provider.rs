//! One configured OpenID Connect provider: its metadata (from discovery) and
//! its signing keys (JWKS), both fetched when first needed and cached.
//!
//! An unknown `kid` refetches the key set, since the provider may have
//! rotated, but at most once per `MIN_REFRESH_INTERVAL`, so that tokens with
//! made-up key ids cannot turn this service into a load generator.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::{Deserialize, de::DeserializeOwned};
use tokio::sync::{Mutex, RwLock};
use url::Url;

use super::outbound::Outbound;

const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
const LEEWAY_SECS: u64 = 30;

/// What discovery tells about the provider (OpenID Connect Discovery 1.0).
#[derive(Clone, Debug, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
}

pub struct Provider {
    issuer: String,
    algorithms: Vec<Algorithm>,
    outbound: Outbound,
    metadata: RwLock<Option<Metadata>>,
    keys: RwLock<Keys>,
    refresh: Mutex<()>,
    min_refresh_interval: Duration,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

impl Provider {
    #[must_use]
    pub fn new(issuer: String, algorithms: Vec<Algorithm>, outbound: Outbound) -> Self {
        Self::with_refresh_interval(issuer, algorithms, outbound, MIN_REFRESH_INTERVAL)
    }

    /// As `new`, with another floor between two key-set fetches (tests).
    #[must_use]
    pub fn with_refresh_interval(
        issuer: String,
        algorithms: Vec<Algorithm>,
        outbound: Outbound,
        min_refresh_interval: Duration,
    ) -> Self {
        Self {
            issuer,
            algorithms,
            outbound,
            metadata: RwLock::new(None),
            keys: RwLock::new(Keys::default()),
            refresh: Mutex::new(()),
            min_refresh_interval,
        }
    }

    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The provider's metadata, discovered on first use. The document must
    /// name the configured issuer exactly, or it describes someone else.
    pub async fn metadata(&self) -> anyhow::Result<Metadata> {
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
        if !self.algorithms.contains(&header.alg) {
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
        // The header's algorithm is on the allow-list (checked above), and
        // jsonwebtoken refuses it unless it also fits the key's type.
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Ok(jsonwebtoken::decode::<T>(token, &key, &validation)?.claims)
    }

    /// Whether `kid` is one of the provider's keys, refreshing the key set
    /// if it is not (rate-limited).
    pub async fn knows_kid(&self, kid: &str) -> bool {
        matches!(self.key(kid).await, Ok(Some(_)))
    }

    async fn key(&self, kid: &str) -> anyhow::Result<Option<DecodingKey>> {
        if let Some(key) = self.keys.read().await.by_kid.get(kid) {
            return Ok(Some(key.clone()));
        }
        // One refresh at a time; whoever waited finds the fresh set.
        let _refreshing = self.refresh.lock().await;
        {
            let keys = self.keys.read().await;
            if let Some(key) = keys.by_kid.get(kid) {
                return Ok(Some(key.clone()));
            }
            if keys.fetched_at.is_some_and(|at| at.elapsed() < self.min_refresh_interval) {
                return Ok(None);
            }
        }
        let metadata = self.metadata().await?;
        let set: JwkSet =
            self.outbound.get_json(&metadata.jwks_uri).await.context("fetching the provider's JWKS")?;
        let by_kid: HashMap<String, DecodingKey> = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect();
        tracing::info!(issuer = %self.issuer, keys = by_kid.len(), "fetched the provider's signing keys");
        let key = by_kid.get(kid).cloned();
        *self.keys.write().await = Keys { by_kid, fetched_at: Some(Instant::now()) };
        Ok(key)
    }
}
