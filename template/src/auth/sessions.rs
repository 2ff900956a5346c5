//! Sessions: refresh tokens grouped in a family per login.
//!
//! A refresh token is 256 random bits, opaque to the client, stored only as
//! its SHA-256. Every use rotates it: the presented token is marked used and
//! a new one of the same family is issued. Presenting a token that was
//! already used means it was copied, by an attacker or from a client that
//! was robbed, so the whole family is revoked and everyone holding one of
//! its tokens must log in again (OAuth 2.0 Security BCP, section 4.14).
//! Revocation lives in the database, so it holds at once on every instance.
//!
//! Every change to an account's sessions (a rotation, a revocation) first
//! locks the account's row (`db::users::lock`), so that a refresh in flight
//! and a revocation of the same account run one after the other: a refresh
//! can never slip a new token past a logout-all that ran at the same time.
//!
//! Access tokens name their session (`sid`, the family) and are refused once
//! it is revoked (checked on every request, see `principal`): a logout, a
//! logout-all, a password change, a detected reuse end the access tokens of
//! the sessions they end, not only their refresh tokens.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{AuthError, AuthMethod, account_changed, random_token, sha256, tokens::Grant};
use crate::{
    audit::{Actor, Auditor, Event, Outcome},
    authz,
    db::{self, Pool, Tx, refresh_tokens::NewRefreshToken},
};

/// How long sessions last.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    /// A session unused for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after its login, however active.
    pub lifetime: Duration,
}

/// What login and refresh answer (RFC 6749, section 5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u64,
    pub refresh_token: String,
}

/// Starts a session for a user who just authenticated.
pub async fn start(
    db: &Pool,
    auth: &super::Auth,
    user_id: Uuid,
    method: AuthMethod,
) -> Result<TokenPair, AuthError> {
    let now = OffsetDateTime::now_utc();
    let family_expires_at = now + auth.sessions.lifetime;
    let (refresh_token, token_hash) = new_refresh_token()?;
    let family_id = Uuid::new_v4();
    db::refresh_tokens::insert(
        db,
        NewRefreshToken {
            family_id,
            user_id,
            token_hash: &token_hash,
            auth_method: method.as_str(),
            expires_at: (now + auth.sessions.idle_timeout).min(family_expires_at),
            family_expires_at,
        },
    )
    .await?;
    token_pair(db, auth, user_id, family_id, method, refresh_token).await
}

/// Exchanges a refresh token for a new pair, detecting reuse.
pub async fn refresh(
    db: &Pool,
    auth: &super::Auth,
    audit: &Auditor,
    presented: &str,
) -> Result<TokenPair, AuthError> {
    let Some(found) = db::refresh_tokens::find_by_hash(db, &sha256(presented)).await? else {
        return Err(AuthError::InvalidRefreshToken);
    };
    let mut tx = db.begin().await?;
    let Some(disabled) = db::users::lock(&mut tx, found.user_id).await? else {
        return Err(AuthError::InvalidRefreshToken);
    };
    // Read again under the lock: a revocation may have committed meanwhile.
    let row =
        db::refresh_tokens::find_by_id(&mut *tx, found.id).await?.ok_or(AuthError::InvalidRefreshToken)?;
    if row.revoked_at.is_some() {
        return Err(AuthError::InvalidRefreshToken);
    }
    if row.used_at.is_some() {
        db::refresh_tokens::revoke_family(&mut *tx, row.family_id).await?;
        tx.commit().await?;
        account_changed();
        audit.record(
            Event::new("auth.refresh.reuse_detected", Outcome::Denied)
                .on_account(row.user_id)
                .detail("session", row.family_id.to_string())
                .detail("action", "session revoked"),
        );
        return Err(AuthError::InvalidRefreshToken);
    }
    let now = OffsetDateTime::now_utc();
    let Some(method) = AuthMethod::parse(&row.auth_method) else {
        return Err(AuthError::InvalidRefreshToken);
    };
    if row.expires_at <= now || row.family_expires_at <= now {
        return Err(AuthError::InvalidRefreshToken);
    }
    if disabled {
        db::refresh_tokens::revoke_family(&mut *tx, row.family_id).await?;
        tx.commit().await?;
        account_changed();
        return Err(AuthError::InvalidRefreshToken);
    }

    let (refresh_token, new_hash) = new_refresh_token()?;
    if !db::refresh_tokens::mark_used(&mut *tx, row.id).await? {
        return Err(AuthError::InvalidRefreshToken);
    }
    db::refresh_tokens::insert(
        &mut *tx,
        NewRefreshToken {
            family_id: row.family_id,
            user_id: row.user_id,
            token_hash: &new_hash,
            auth_method: method.as_str(),
            expires_at: (now + auth.sessions.idle_timeout).min(row.family_expires_at),
            family_expires_at: row.family_expires_at,
        },
    )
    .await?;
    tx.commit().await?;
    audit.record(
        Event::new("auth.token.refreshed", Outcome::Success)
            .actor(Actor::account(row.user_id).by(method.as_str()))
            .on_account(row.user_id)
            .detail("session", row.family_id.to_string()),
    );
    token_pair(db, auth, row.user_id, row.family_id, method, refresh_token).await
}

/// Ends the session the token belongs to. Unknown tokens are ignored: logout
/// is idempotent and tells nothing about which tokens exist.
pub async fn end(db: &Pool, audit: &Auditor, presented: &str) -> Result<(), AuthError> {
    if let Some(row) = db::refresh_tokens::find_by_hash(db, &sha256(presented)).await? {
        let mut tx = db.begin().await?;
        db::users::lock(&mut tx, row.user_id).await?;
        db::refresh_tokens::revoke_family(&mut *tx, row.family_id).await?;
        tx.commit().await?;
        account_changed();
        audit.record(
            Event::new("auth.logout", Outcome::Success)
                .actor(Actor::account(row.user_id).by("refresh_token"))
                .on_account(row.user_id)
                .detail("session", row.family_id.to_string()),
        );
    }
    Ok(())
}

/// Ends every session of a user, with their access tokens.
pub async fn end_all(db: &Pool, audit: &Auditor, user_id: Uuid, by: Actor) -> Result<(), AuthError> {
    let mut tx = db.begin().await?;
    end_all_in(&mut tx, user_id).await?;
    tx.commit().await?;
    account_changed();
    audit.record(Event::new("auth.logout_all", Outcome::Success).actor(by).on_account(user_id));
    Ok(())
}

/// `end_all` inside a larger change (a password change, disabling,
/// linking), committed with it; call `account_changed` after the commit.
pub async fn end_all_in(tx: &mut Tx<'_>, user_id: Uuid) -> Result<(), sqlx::Error> {
    db::users::lock(tx, user_id).await?;
    db::refresh_tokens::revoke_user(&mut **tx, user_id).await?;
    Ok(())
}

async fn token_pair(
    db: &Pool,
    auth: &super::Auth,
    user_id: Uuid,
    session: Uuid,
    method: AuthMethod,
    refresh_token: String,
) -> Result<TokenPair, AuthError> {
    let roles = db::users::roles(db, user_id).await?;
    let role_names: Vec<String> = roles.iter().map(|role| role.as_str().to_owned()).collect();
    let scopes = authz::scopes_for(&roles);
    let access = auth.tokens.issue(&Grant {
        user_id,
        session,
        roles: &role_names,
        scopes: &scopes,
        amr: method.amr(),
    })?;
    Ok(TokenPair {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token,
    })
}

/// A fresh refresh token and its hash.
fn new_refresh_token() -> Result<(String, Vec<u8>), AuthError> {
    let token = random_token()?;
    let token_hash = sha256(&token);
    Ok((token, token_hash))
}
