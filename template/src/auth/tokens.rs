//! Access tokens: short-lived JWTs in the RFC 9068 profile (`typ: at+jwt`),
//! signed with Ed25519 (EdDSA).
//!
//! Verification trusts nothing the token says about itself: the algorithm
//! must be EdDSA (so never `none`, never HMAC keyed with a public key), the
//! `kid` must name one of our keys, and `typ`, `iss`, `aud`, `exp` and `nbf`
//! must all check out. An ID token, whose `typ` is `JWT` and whose `aud` is a
//! client, is therefore never accepted as an access token.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Header, Validation, jwk::JwkSet};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{keys::KeySet, unix_now};

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
        Self { keys, issuer, audience, lifetime, validation }
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

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenRejection> {
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
