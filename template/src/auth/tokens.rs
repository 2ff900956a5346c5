//! Access tokens: short-lived JWTs in the RFC 9068 profile (`typ: at+jwt`),
//! signed with Ed25519 (EdDSA).
//!
//! Verification trusts nothing the token says about itself: the algorithm
//! must be EdDSA (so never `none`, never HMAC keyed with a public key), the
//! `kid` must name one of our keys, and `typ`, `iss`, `aud`, `exp` and `nbf`
//! must all check out. An ID token, whose `typ` is `JWT` and whose `aud` is a
//! client, is therefore never accepted as an access token.
//!
//! A token that verified is remembered, by the SHA-256 of the whole token,
//! until it expires, so that its next requests skip the signature check
//! (27 µs); the keys never change while the service runs, so the outcome
//! cannot either. The account behind it is still checked on every request.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, Header, Validation, jwk::JwkSet};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use sha2::{Digest, Sha256};

use super::{cache::ExpiringCache, keys::KeySet, unix_now};

/// Verified tokens remembered at most.
const VERIFIED_TOKENS: usize = 100_000;

/// The `typ` header of access tokens (RFC 9068, section 2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Clock skew tolerated between this service and whoever checks its tokens.
const LEEWAY_SECS: u64 = 30;

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    /// Unique per token, so that a log line can name one.
    pub jti: String,
    /// The session (refresh-token family) the token was issued in; the
    /// token is refused once that session ends.
    pub sid: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Space-separated, as in OAuth 2.0.
    #[serde(default)]
    pub scope: String,
    /// How the user authenticated (RFC 8176 values: `pwd`, `fed`).
    #[serde(default)]
    pub amr: Vec<String>,
}

/// What a new access token says about its subject.
pub struct Grant<'a> {
    pub user_id: Uuid,
    /// The session it belongs to.
    pub session: Uuid,
    pub roles: &'a [String],
    pub scopes: &'a [String],
    pub amr: &'a str,
}

/// A signed access token and how many seconds it lives.
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
}

/// Why a token was refused. Only logged: clients learn "invalid_token".
#[derive(Debug, thiserror::Error)]
pub enum TokenRejection {
    #[error("malformed token: {0}")]
    Malformed(jsonwebtoken::errors::Error),
    #[error("typ {0:?} is not at+jwt")]
    WrongType(Option<String>),
    #[error("unknown or missing kid")]
    UnknownKey,
    #[error("{0}")]
    Invalid(jsonwebtoken::errors::Error),
}

/// Issues and verifies this service's access tokens.
pub struct Tokens {
    keys: KeySet,
    issuer: String,
    audience: String,
    lifetime: Duration,
    validation: Validation,
    verified: ExpiringCache<[u8; 32], Arc<AccessClaims>>,
}

impl Tokens {
    #[must_use]
    pub fn new(keys: KeySet, issuer: String, audience: String, lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Self { keys, issuer, audience, lifetime, validation, verified: ExpiringCache::new(VERIFIED_TOKENS) }
    }

    pub fn issue(&self, grant: &Grant<'_>) -> anyhow::Result<AccessToken> {
        let now = unix_now();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: grant.user_id.to_string(),
            exp: now + self.lifetime.as_secs(),
            iat: now,
            nbf: now,
            jti: Uuid::new_v4().to_string(),
            sid: grant.session.to_string(),
            roles: grant.roles.to_vec(),
            scope: grant.scopes.join(" "),
            amr: vec![grant.amr.to_owned()],
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(self.keys.signing_kid().to_owned());
        let token = jsonwebtoken::encode(&header, &claims, self.keys.signing_key())?;
        Ok(AccessToken { token, expires_in: self.lifetime.as_secs() })
    }

    /// The claims of `token` when it verified before and has not expired.
    #[must_use]
    pub fn verified_before(&self, token: &str) -> Option<Arc<AccessClaims>> {
        self.verified.get(&Sha256::digest(token).into())
    }

    pub fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, TokenRejection> {
        if let Some(claims) = self.verified_before(token) {
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_signed(token)?);
        // Remembered until its `exp`, never longer; the leeway is not extended.
        let lifetime = Duration::from_secs(claims.exp.saturating_sub(unix_now()));
        self.verified.insert(Sha256::digest(token).into(), claims.clone(), Instant::now() + lifetime);
        Ok(claims)
    }

    fn verify_signed(&self, token: &str) -> Result<AccessClaims, TokenRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(TokenRejection::Malformed)?;
        let typ = header.typ.as_deref().map(str::to_ascii_lowercase);
        if !matches!(typ.as_deref(), Some("at+jwt" | "application/at+jwt")) {
            return Err(TokenRejection::WrongType(header.typ));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.verifying_key(kid))
            .ok_or(TokenRejection::UnknownKey)?;
        jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(TokenRejection::Invalid)
    }

    /// Whether `token` names one of this service's keys (it may still be
    /// invalid); tokens that do not are left to the OpenID Connect provider.
    #[must_use]
    pub fn is_ours(&self, token: &str) -> bool {
        jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|header| header.kid)
            .is_some_and(|kid| self.keys.verifying_key(&kid).is_some())
    }

    #[must_use]
    pub fn jwks(&self) -> &JwkSet {
        self.keys.jwks()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;

    /// A verified token is remembered no longer than it lives, and a token
    /// that differs in any byte is checked afresh.
    #[test]
    fn verified_tokens_are_remembered_until_they_expire_and_no_longer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = KeySet::load(dir.path(), Environment::Development).expect("keys");
        let tokens =
            Tokens::new(keys, "https://issuer".into(), "https://issuer".into(), Duration::from_secs(1));
        let grant =
            Grant { user_id: Uuid::new_v4(), session: Uuid::new_v4(), roles: &[], scopes: &[], amr: "pwd" };
        let token = tokens.issue(&grant).expect("issued").token;
        assert!(tokens.verified_before(&token).is_none());
        let claims = tokens.verify(&token).expect("verifies");
        assert_eq!(tokens.verified_before(&token), Some(claims));
        let mut forged = token.clone();
        forged.pop();
        assert!(tokens.verify(&forged).is_err(), "one byte less is another token, checked afresh");
        std::thread::sleep(Duration::from_millis(2_100));
        assert!(tokens.verified_before(&token).is_none(), "forgotten once expired");
    }
}
