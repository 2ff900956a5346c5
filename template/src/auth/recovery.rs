//! "Forgot password": a link with a single-use token (stored only as its
//! hash, valid for `LINK_LIFETIME`, one outstanding per account) to choose
//! a new password. Asking answers the same whether the address has an
//! account or not.

use std::time::Duration;

use super::{Auth, AuthError, random_token, sessions, sha256, throttle, unix_now};
use crate::{
    audit::{self, Actor, Event, Outcome},
    db::{self, Pool, email_tokens::Purpose},
    domain::{Email, Password},
    mail::{Mailer, Message},
};

const LINK_LIFETIME: Duration = Duration::from_mins(30);

/// Mails a reset link to `email` if an active account has it; otherwise
/// nothing, and the caller cannot tell the difference.
pub async fn request(db: &Pool, mailer: &Mailer, email: &Email) -> Result<(), AuthError> {
    let Some(user) = db::users::find_by_email(db, email).await?.filter(|user| user.disabled_at.is_none())
    else {
        return Ok(());
    };
    let token = random_token()?;
    let expires_at = i64::try_from(unix_now() + LINK_LIFETIME.as_secs()).unwrap_or(i64::MAX);
    db::email_tokens::replace(
        db,
        &sha256(&token),
        Purpose::ResetPassword,
        user.id,
        email.as_str(),
        expires_at,
    )
    .await?;
    mailer.send(email, Message::PasswordReset { token: &token }).await?;
    Ok(())
}

/// Follows a reset link: sets `new_password` (under the policy for new
/// passwords), ends every session, lifts the login throttle, and tells the
/// address. The link proved the mailbox, so the address counts as verified.
pub async fn confirm(
    db: &Pool,
    auth: &Auth,
    mailer: &Mailer,
    token: &str,
    new_password: &Password,
) -> Result<(), AuthError> {
    let hashing = auth.hasher.admit()?;
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let link = db::email_tokens::find(db, &sha256(token), Purpose::ResetPassword)
        .await?
        .filter(|link| link.expires_at >= now)
        .ok_or(AuthError::InvalidLink)?;
    // A link sent before the account moved to another address is void.
    let user = db::users::find_by_id(db, link.user_id).await?.ok_or(AuthError::InvalidLink)?;
    if user.email != link.email {
        return Err(AuthError::InvalidLink);
    }
    let email = Email::try_from(link.email).map_err(|reason| anyhow::anyhow!("stored email: {reason}"))?;
    auth.policy
        .check(new_password, &email)
        .map_err(|reason| AuthError::WeakPassword { field: "new_password", reason })?;
    let hash = hashing.hash(new_password).await?;
    let mut tx = db.begin().await?;
    // Taken inside the change: a link works once, even when two use it at once.
    if db::email_tokens::take(&mut *tx, &sha256(token), Purpose::ResetPassword).await?.is_none() {
        return Err(AuthError::InvalidLink);
    }
    sessions::end_all_in(&mut tx, link.user_id).await?;
    db::users::set_password_hash(&mut *tx, link.user_id, &hash).await?;
    db::users::mark_email_verified(&mut *tx, link.user_id).await?;
    let reset = Event::new("account.password_reset", Outcome::Success)
        .actor(Actor::account(link.user_id).by("email_link"))
        .on_account(link.user_id);
    let audited = audit::append_in(&mut tx, reset).await?;
    tx.commit().await?;
    super::account_changed();
    audited.log();
    throttle::unlock(db, link.user_id).await?;
    mailer.send(&email, Message::PasswordChanged).await?;
    Ok(())
}
