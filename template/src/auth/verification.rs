//! Proving addresses: the link a new account gets, sending it again, and
//! moving an account to another address (which must be proven before it
//! replaces the old one). Each link carries a single-use token, stored only
//! as its hash, valid for `LINK_LIFETIME` and replaced by a newer one.

use std::{net::IpAddr, time::Duration};

use uuid::Uuid;

use super::{Auth, AuthError, Principal, password::Verification, random_token, sha256, unix_now};
use crate::{
    audit::{self, Actor, Auditor, Event, Outcome},
    db::{self, Pool, email_tokens::Purpose},
    domain::{Email, Password},
    mail::{Mailer, Message},
};

const LINK_LIFETIME: Duration = Duration::from_hours(24);

/// Why an address could not be proven.
#[derive(Debug, thiserror::Error)]
pub enum VerificationError {
    /// Unknown, used, replaced by a newer one, or expired.
    #[error("the link is invalid or expired")]
    InvalidLink,
    /// The address an account was moving to was taken meanwhile.
    #[error("the address belongs to another account")]
    AddressTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Mails `user_id` a link that proves `email` (the account's, or the one it
/// moves to).
pub(crate) async fn send_link(
    db: &Pool,
    mailer: &Mailer,
    user_id: Uuid,
    email: &Email,
) -> Result<(), AuthError> {
    let token = random_token()?;
    let expires_at = i64::try_from(unix_now() + LINK_LIFETIME.as_secs()).unwrap_or(i64::MAX);
    db::email_tokens::replace(db, &sha256(&token), Purpose::Verify, user_id, email.as_str(), expires_at)
        .await?;
    mailer.send(email, Message::VerifyEmail { token: &token }).await?;
    Ok(())
}

/// Follows a link: the address it proves becomes the account's, verified;
/// recorded in the audit trail with the change.
pub async fn confirm(db: &Pool, token: &str) -> Result<(), VerificationError> {
    let mut tx = db.begin().await?;
    let link = db::email_tokens::take(&mut *tx, &sha256(token), Purpose::Verify)
        .await?
        .filter(|link| link.expires_at >= i64::try_from(unix_now()).unwrap_or(i64::MAX))
        .ok_or(VerificationError::InvalidLink)?;
    let user = db::users::find_by_id(&mut *tx, link.user_id).await?.ok_or(VerificationError::InvalidLink)?;
    if !db::users::confirm_email(&mut *tx, link.user_id, &link.email).await? {
        return Err(VerificationError::AddressTaken);
    }
    let name = if user.email == link.email { "account.email_verified" } else { "account.email_changed" };
    let event = Event::new(name, Outcome::Success)
        .actor(Actor::account(link.user_id).by("email_link"))
        .on_account(link.user_id);
    let audited = audit::append_in(&mut tx, event).await?;
    tx.commit().await?;
    super::account_changed();
    audited.log();
    Ok(())
}

/// Sends the caller's link again, unless the address is proven already.
/// The per-address share of mail bounds how often.
pub async fn resend(db: &Pool, mailer: &Mailer, principal: &Principal) -> Result<(), AuthError> {
    let user_id = principal.user_id().map_err(|_| AuthError::UnknownAccount)?;
    let user = db::users::find_by_id(db, user_id).await?.ok_or(AuthError::UnknownAccount)?;
    if user.email_verified_at.is_some() {
        return Ok(());
    }
    let email = Email::try_from(user.email).map_err(|reason| anyhow::anyhow!("stored email: {reason}"))?;
    send_link(db, mailer, user_id, &email).await
}

/// What moving an account to another address asks for.
pub struct EmailChange<'a> {
    pub current_password: &'a Password,
    pub new_email: &'a Email,
}

/// Asks to move the caller's account to `new_email`, proven by the current
/// password (checked under the login throttle, like a password change). The
/// new address gets a link, or, when another account has it, a notice; the
/// old address is told either way. The answer is the same in every case.
pub async fn change_email(
    db: &Pool,
    auth: &Auth,
    audit: &Auditor,
    mailer: &Mailer,
    user_id: Uuid,
    client: IpAddr,
    change: EmailChange<'_>,
) -> Result<(), AuthError> {
    let EmailChange { current_password, new_email } = change;
    let hashing = auth.hasher.admit()?;
    let user = db::users::find_by_id(db, user_id).await?.ok_or(AuthError::UnknownAccount)?;
    let checked = auth.throttle.reserve(db, user_id, client).await?;
    let stored = user.password_hash.as_deref().filter(|_| checked);
    let requested = Event::new("account.email_change.requested", Outcome::Success)
        .actor(Actor::account(user_id).by("password"))
        .on_account(user_id);
    if hashing.verify(current_password, stored).await? == Verification::Mismatch {
        audit.record(requested.failed(if checked { "credentials" } else { "throttled" }));
        return Err(AuthError::WrongCurrentPassword);
    }
    auth.throttle.succeeded(db, user_id, client).await?;
    audit.record(requested);
    let old_email =
        Email::try_from(user.email).map_err(|reason| anyhow::anyhow!("stored email: {reason}"))?;
    if *new_email == old_email {
        return Ok(());
    }
    match db::users::find_by_email(db, new_email).await? {
        Some(_) => mailer.send(new_email, Message::EmailChangeNotice).await?,
        None => send_link(db, mailer, user_id, new_email).await?,
    }
    mailer.send(&old_email, Message::EmailChangeRequested).await?;
    Ok(())
}
