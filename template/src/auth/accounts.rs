//! Local accounts: registration, login with throttling, password changes.
//! (What administrators do to accounts is in `admin`.)

use std::net::IpAddr;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Auth, AuthMethod,
    password::{Overloaded, Verification},
    sessions::{self, TokenPair},
    verification,
};
use crate::{
    audit::{self, Actor, Auditor, Event, Outcome},
    authz::Role,
    db::{
        self, Pool,
        users::{NewUser, UserRow},
    },
    domain::{DisplayName, Email, Password},
    mail::{Mailer, Message},
};

/// Why an account operation failed, in this service's terms (the HTTP
/// layer maps each to an answer in `http::error`).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    /// A mailed link that is unknown, used, replaced or expired.
    #[error("the link is invalid or expired")]
    InvalidLink,
    #[error("{field} rejected: {reason}")]
    WeakPassword { field: &'static str, reason: String },
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("no such account")]
    UnknownAccount,
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub struct Registration {
    pub email: Email,
    pub password: Password,
    pub display_name: Option<DisplayName>,
}

/// A public view of an account: never the hash, never internal counters.
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub roles: Vec<Role>,
    pub created_at: OffsetDateTime,
}

/// Registers an account, answering the same whether the address is new or
/// taken, in the same time (one password hash either way), so that the
/// answer tells nobody which addresses have accounts. A new address gets a
/// link to prove it; a taken one gets a notice instead, and its account
/// does not change.
pub async fn register(
    db: &Pool,
    auth: &Auth,
    audit: &Auditor,
    mailer: &Mailer,
    registration: Registration,
) -> Result<(), AuthError> {
    auth.policy
        .check(&registration.password, &registration.email)
        .map_err(|reason| AuthError::WeakPassword { field: "password", reason })?;
    let hash = auth.hasher.admit()?.hash(&registration.password).await?;
    let new_user = NewUser {
        email: &registration.email,
        display_name: registration.display_name.as_ref(),
        password_hash: Some(&hash),
        roles: &[Role::User],
        email_verified: false,
    };
    let registered = Event::new("account.registered", Outcome::Success);
    if let Some(user) = db::users::insert(db, new_user).await? {
        audit.record(registered.on_account(user.id));
        verification::send_link(db, mailer, user.id, &registration.email).await
    } else {
        audit.record(registered.failed("address_taken"));
        Ok(mailer.send(&registration.email, Message::RegistrationNotice).await?)
    }
}

/// Checks the credentials and starts a session.
///
/// An unknown email, a wrong password, a disabled account and a throttled
/// check (see `throttle`) all answer `InvalidCredentials`, and each costs
/// one password hash, so neither the answer nor its timing tells an attacker
/// which accounts exist or whether the throttle holds.
pub async fn login(
    db: &Pool,
    auth: &Auth,
    audit: &Auditor,
    email: &Email,
    password: &Password,
    client: IpAddr,
) -> Result<TokenPair, AuthError> {
    let hashing = auth.hasher.admit()?;
    let found = db::users::find_by_email(db, email).await?;
    let disabled = found.as_ref().is_some_and(|user| user.disabled_at.is_some());
    let user = found.filter(|user| user.disabled_at.is_none());
    let checked = match &user {
        Some(user) => auth.throttle.reserve(db, user.id, client).await?,
        None => false,
    };
    let stored = user.as_ref().filter(|_| checked).and_then(|user| user.password_hash.as_deref());
    let verification = hashing.verify(password, stored).await?;
    // The reason says what stopped the login, never which of the email
    // and the password was wrong.
    let failed = Event::new("auth.login.failed", Outcome::Failure).actor(Actor::anonymous().by("password"));
    let exists = user.is_some();
    let Some(user) = user.filter(|_| checked) else {
        let reason = match (disabled, exists) {
            (true, _) => "disabled",
            (false, true) => "throttled",
            (false, false) => "credentials",
        };
        audit.record(failed.failed(reason));
        return Err(AuthError::InvalidCredentials);
    };
    if verification == Verification::Mismatch {
        // The reserved check stays counted: it was a failed guess.
        audit.record(failed.failed("credentials"));
        return Err(AuthError::InvalidCredentials);
    }
    auth.throttle.succeeded(db, user.id, client).await?;
    audit.record(
        Event::new("auth.login.succeeded", Outcome::Success)
            .actor(Actor::account(user.id).by("password"))
            .on_account(user.id),
    );
    if verification == Verification::MatchNeedsRehash {
        let upgraded = hashing.hash(password).await?;
        db::users::set_password_hash(db, user.id, &upgraded).await?;
        tracing::info!(user_id = %user.id, "password hash upgraded to current parameters");
    }
    sessions::start(db, auth, user.id, AuthMethod::Password).await
}

/// Changes the password of a signed-in user and ends all their sessions and
/// access tokens, so that a thief holding either is locked out too.
///
/// The current password is checked under the login throttle: a stolen
/// access token must become neither an oracle for guessing the password nor
/// a way to lock its owner out.
pub async fn change_password(
    db: &Pool,
    auth: &Auth,
    user_id: Uuid,
    client: IpAddr,
    current: &Password,
    new: &Password,
) -> Result<(), AuthError> {
    let hashing = auth.hasher.admit()?;
    let user = db::users::find_by_id(db, user_id).await?.ok_or(AuthError::UnknownAccount)?;
    let checked = auth.throttle.reserve(db, user_id, client).await?;
    let stored = user.password_hash.as_deref().filter(|_| checked);
    if hashing.verify(current, stored).await? == Verification::Mismatch {
        return Err(AuthError::WrongCurrentPassword);
    }
    auth.throttle.succeeded(db, user_id, client).await?;
    let email = Email::try_from(user.email).map_err(|reason| anyhow::anyhow!("stored email: {reason}"))?;
    auth.policy
        .check(new, &email)
        .map_err(|reason| AuthError::WeakPassword { field: "new_password", reason })?;
    let hash = hashing.hash(new).await?;
    let mut tx = db.begin().await?;
    sessions::end_all_in(&mut tx, user_id).await?;
    db::users::set_password_hash(&mut *tx, user_id, &hash).await?;
    let changed = Event::new("account.password_changed", Outcome::Success)
        .actor(Actor::account(user_id).by("password"))
        .on_account(user_id);
    let audited = audit::append_in(&mut tx, changed).await?;
    tx.commit().await?;
    super::account_changed();
    audited.log();
    Ok(())
}

/// The caller's own account.
pub async fn profile(db: &Pool, user_id: Uuid) -> Result<Account, AuthError> {
    let (user, roles) = db::users::find_with_roles(db, user_id).await?.ok_or(AuthError::UnknownAccount)?;
    Ok(account(user, roles))
}

/// The public view of an account row.
pub(crate) fn account(user: UserRow, roles: Vec<Role>) -> Account {
    Account {
        id: user.id,
        email: user.email,
        email_verified: user.email_verified_at.is_some(),
        display_name: user.display_name,
        roles,
        created_at: user.created_at,
    }
}
