//! Login at the provider: the authorization code flow with PKCE (S256),
//! `state` and `nonce` (OAuth 2.0 Security BCP; OpenID Connect Core 3.1).
//!
//! `start` remembers, server-side and for ten minutes, the PKCE verifier
//! (encrypted at rest) and the nonce under the hash of `state`, and binds the login to the browser
//! with a random cookie, so that an attacker cannot make a victim's browser
//! finish a login the attacker started (login CSRF). `finish` accepts each
//! state once, exchanges the code, validates the ID token and issues this
//! service's own token pair.
//!
//! Which account a provider identity logs into:
//! - the account it is linked to;
//! - when a signed-in user started the login to link (`start` with
//!   `link_to`), that user's account;
//! - an account with the same address, linked now, only when the provider
//!   verified the address and the account cannot be a squatter's: it has no
//!   password, or this service verified its address. Anyone can register an
//!   address they do not own; linking such an account by email would hand
//!   the squatter's password and sessions the owner's identity. Otherwise
//!   the login is refused and the owner links while signed in;
//! - else a new account without a password.
//!
//! Linking ends every session the account had.

use anyhow::Context;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenUrl,
    basic::{
        BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
    },
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::Oidc;
use crate::{
    audit::{self, Actor, Auditor, Event, Outcome},
    auth::{
        Auth, AuthMethod, account_changed, random_token,
        sessions::{self, TokenPair},
        sha256, unix_now,
    },
    authz::Role,
    db::{self, Pool, oidc_logins::PendingLogin, users::NewUser},
    domain::{DisplayName, Email},
    encryption::{self, DataKeys, Field},
};
use uuid::Uuid;

/// Where a pending login's PKCE verifier is kept, sealed and bound to the
/// hash of its `state`: a copy of the database cannot finish a login.
const PKCE_VERIFIER: Field = Field { table: "oidc_logins", column: "pkce_verifier" };

/// How long a login may take between the redirect and the callback.
const LOGIN_LIFETIME_SECS: u64 = 600;

/// The cookie that binds a login to the browser that started it. `__Host-`
/// makes browsers insist on Secure, Path=/ and no Domain.
pub const BROWSER_COOKIE: &str = "__Host-oidc-login";

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("no login client is configured")]
    NotConfigured,
    #[error("the login state is unknown, used, expired or from another browser")]
    InvalidState,
    #[error("the provider refused the login: {0}")]
    Refused(String),
    #[error("the provider shared no usable email address")]
    NoEmail,
    #[error("an account with this email exists and the provider has not verified the address")]
    UnverifiedEmail,
    #[error("an account with this email exists; its owner must link the provider while signed in")]
    LinkWhileSignedIn,
    #[error("the provider identity is linked to another account")]
    IdentityTaken,
    #[error("too many logins are pending")]
    TooManyPending,
    #[error("the account is disabled")]
    Disabled,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl LoginError {
    /// The reason class the audit trail records.
    fn reason(&self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::InvalidState => "invalid_state",
            Self::Refused(_) => "provider_refused",
            Self::NoEmail => "no_email",
            Self::UnverifiedEmail => "unverified_email",
            Self::LinkWhileSignedIn => "link_while_signed_in",
            Self::IdentityTaken => "identity_taken",
            Self::TooManyPending => "too_many_pending",
            Self::Disabled => "disabled",
            Self::Database(_) | Self::Internal(_) => "error",
        }
    }
}

/// Where to send the browser, and the cookie to set on the way.
pub struct Redirect {
    pub location: Url,
    pub browser_binding: String,
}

/// The token response, with the ID token OpenID Connect adds.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct IdTokenField {
    id_token: String,
}

impl ExtraTokenFields for IdTokenField {}

type OidcClient = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenField, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The claims of an ID token this service looks at.
#[derive(Deserialize)]
struct IdClaims {
    sub: String,
    aud: serde_json::Value,
    azp: Option<String>,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<bool>,
    name: Option<String>,
}

/// Begins a login at the provider; with `link_to`, a signed-in user's
/// request to link the identity they log in with to their account.
pub async fn start(
    db: &Pool,
    keys: &DataKeys,
    oidc: &Oidc,
    link_to: Option<Uuid>,
) -> Result<Redirect, LoginError> {
    let client = oauth_client(oidc).await?;
    let settings = oidc.client.as_ref().ok_or(LoginError::NotConfigured)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = random_token()?;
    let browser_binding = random_token()?;
    let (location, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(settings.scopes.iter().cloned().map(Scope::new))
        .add_extra_param("nonce", &nonce)
        .set_pkce_challenge(challenge)
        .url();
    let state_hash = sha256(state.secret());
    let sealed_verifier =
        keys.seal(PKCE_VERIFIER, &state_hash, verifier.secret()).context("sealing the PKCE verifier")?;
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let remembered = db::oidc_logins::insert(
        db,
        PendingLogin {
            state_hash: &state_hash,
            browser_hash: &sha256(&browser_binding),
            pkce_verifier: &sealed_verifier,
            nonce: &nonce,
            expires_at: now.saturating_add_unsigned(LOGIN_LIFETIME_SECS),
            link_user_id: link_to,
        },
        now,
        oidc.max_pending_logins,
    )
    .await?;
    if !remembered {
        return Err(LoginError::TooManyPending);
    }
    Ok(Redirect { location, browser_binding })
}

/// What the provider's redirect to the callback brings back, with the
/// browser's binding cookie.
pub struct Callback<'a> {
    pub code: &'a str,
    pub state: &'a str,
    pub browser_binding: Option<&'a str>,
}

pub async fn finish(
    db: &Pool,
    keys: &DataKeys,
    auth: &Auth,
    audit: &Auditor,
    oidc: &Oidc,
    callback: &Callback<'_>,
) -> Result<TokenPair, LoginError> {
    match complete(db, keys, auth, oidc, callback).await {
        Ok((user_id, pair)) => {
            let event = Event::new("auth.oidc.login.succeeded", Outcome::Success)
                .actor(Actor::account(user_id).by("oidc"))
                .on_account(user_id);
            audit.record(event);
            Ok(pair)
        }
        Err(err) => {
            let event =
                Event::new("auth.oidc.login.failed", Outcome::Failure).actor(Actor::anonymous().by("oidc"));
            audit.record(event.failed(err.reason()));
            Err(err)
        }
    }
}

/// The callback's work: the account the provider identity logs into, and
/// its new session.
async fn complete(
    db: &Pool,
    keys: &DataKeys,
    auth: &Auth,
    oidc: &Oidc,
    callback: &Callback<'_>,
) -> Result<(Uuid, TokenPair), LoginError> {
    let Callback { code, state, browser_binding } = *callback;
    let settings = oidc.client.as_ref().ok_or(LoginError::NotConfigured)?;
    let state_hash = sha256(state);
    let pending = db::oidc_logins::take(db, &state_hash).await?.ok_or(LoginError::InvalidState)?;
    let same_browser = browser_binding.is_some_and(|binding| sha256(binding) == pending.browser_hash);
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    if !same_browser || pending.expires_at < now {
        return Err(LoginError::InvalidState);
    }

    let verifier =
        keys.open(PKCE_VERIFIER, &state_hash, &pending.pkce_verifier).context("opening the PKCE verifier")?;
    let client = oauth_client(oidc).await?;
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&oidc.outbound)
        .await
        .map_err(|err| LoginError::Refused(err.to_string()))?;

    let id_token = &response.extra_fields().id_token;
    let claims: IdClaims = oidc
        .provider
        .verify(id_token, &settings.id, false)
        .await
        .map_err(|err| LoginError::Refused(format!("invalid ID token: {err:#}")))?;
    if claims.nonce.as_deref() != Some(pending.nonce.as_str()) {
        return Err(LoginError::Refused("the ID token's nonce does not match".to_owned()));
    }
    let several_audiences = claims.aud.as_array().is_some_and(|audiences| audiences.len() > 1);
    if several_audiences && claims.azp.as_deref() != Some(settings.id.as_str()) {
        return Err(LoginError::Refused("the ID token was issued to another party (azp)".to_owned()));
    }

    let issuer = oidc.provider.issuer();
    let user_id = match pending.link_user_id {
        Some(user_id) => link_signed_in(db, issuer, &claims.sub, user_id).await?,
        None => account_for(db, issuer, claims).await?,
    };
    let active = db::users::find_by_id(db, user_id).await?.is_some_and(|user| user.disabled_at.is_none());
    if !active {
        return Err(LoginError::Disabled);
    }
    let pair = sessions::start(db, auth, user_id, AuthMethod::Oidc)
        .await
        .map_err(|err| LoginError::Internal(err.into()))?;
    Ok((user_id, pair))
}

/// The account for a provider identity (see the module's docs).
async fn account_for(db: &Pool, issuer: &str, claims: IdClaims) -> Result<Uuid, LoginError> {
    if let Some(user_id) = db::identities::find_user(db, issuer, &claims.sub).await? {
        return Ok(user_id);
    }
    let email = claims.email.and_then(|email| Email::try_from(email).ok()).ok_or(LoginError::NoEmail)?;
    if let Some(user) = db::users::find_by_email(db, &email).await? {
        if claims.email_verified != Some(true) {
            return Err(LoginError::UnverifiedEmail);
        }
        if user.password_hash.is_some() && user.email_verified_at.is_none() {
            return Err(LoginError::LinkWhileSignedIn);
        }
        link(db, issuer, &claims.sub, user.id, "verified_email").await?;
        return Ok(user.id);
    }
    let display_name = claims.name.and_then(|name| DisplayName::try_from(name).ok());
    let user = db::users::insert(
        db,
        NewUser {
            email: &email,
            display_name: display_name.as_ref(),
            password_hash: None,
            roles: &[Role::User],
            // The provider vouches for the address when it says so.
            email_verified: claims.email_verified == Some(true),
        },
    )
    .await?
    .ok_or(LoginError::UnverifiedEmail)?;
    db::identities::link(db, issuer, &claims.sub, user.id).await?;
    tracing::info!(user_id = %user.id, issuer, "created an account for a provider identity");
    Ok(user.id)
}

/// Links the identity to the signed-in user who asked for it.
async fn link_signed_in(db: &Pool, issuer: &str, subject: &str, user_id: Uuid) -> Result<Uuid, LoginError> {
    match db::identities::find_user(db, issuer, subject).await? {
        Some(linked) if linked == user_id => Ok(user_id),
        Some(_) => Err(LoginError::IdentityTaken),
        None => {
            link(db, issuer, subject, user_id, "signed_in").await?;
            Ok(user_id)
        }
    }
}

/// Links the identity to an existing account and ends every session the
/// account had: whoever held one before the link must prove themselves
/// again. `how` says what allowed the link (the audit trail's `details`).
async fn link(
    db: &Pool,
    issuer: &str,
    subject: &str,
    user_id: Uuid,
    how: &'static str,
) -> Result<(), LoginError> {
    let mut tx = db.begin().await?;
    sessions::end_all_in(&mut tx, user_id).await?;
    if !db::identities::link(&mut *tx, issuer, subject, user_id).await? {
        return Err(LoginError::IdentityTaken);
    }
    let linked = Event::new("account.identity_linked", Outcome::Success)
        .actor(Actor::account(user_id).by("oidc"))
        .on_account(user_id)
        .detail("issuer", issuer)
        .detail("by", how);
    let audited = audit::append_in(&mut tx, linked).await?;
    tx.commit().await?;
    account_changed();
    audited.log();
    Ok(())
}

async fn oauth_client(oidc: &Oidc) -> Result<OidcClient, LoginError> {
    let settings = oidc.client.as_ref().ok_or(LoginError::NotConfigured)?;
    let metadata = oidc.provider.metadata().await?;
    oidc.outbound.check(&metadata.token_endpoint)?;
    let mut client = oauth2::Client::new(ClientId::new(settings.id.clone()))
        .set_auth_uri(AuthUrl::from_url(metadata.authorization_endpoint))
        .set_token_uri(TokenUrl::from_url(metadata.token_endpoint))
        .set_redirect_uri(RedirectUrl::from_url(settings.redirect_url.clone()));
    if let Some(secret) = &settings.secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
    }
    Ok(client)
}

/// Re-encrypts the PKCE verifiers of pending logins not yet under the
/// current key; returns how many (see `encryption::reseal_all`).
pub async fn reseal_pending(db: &Pool, keys: &DataKeys, batch: u32) -> anyhow::Result<u64> {
    encryption::reseal_all(
        keys,
        PKCE_VERIFIER,
        batch,
        async |prefix, limit| Ok(db::oidc_logins::sealed_otherwise(db, prefix, limit).await?),
        async |state_hash, read, verifier| {
            Ok(db::oidc_logins::reseal_verifier(db, state_hash, read, verifier).await?)
        },
    )
    .await
}
