//! Local accounts: registration, login with lockout, password changes.

use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Auth, AuthMethod,
    password::Verification,
    sessions::{self, TokenPair},
};
use crate::{
    authz::Role,
    db::{
        self, Pool,
        users::{NewUser, UserRow},
    },
    domain::{DisplayName, Email, Password},
    http::{ApiError, FieldError},
};

/// Why an account operation failed, in the service's own terms; the HTTP
/// layer maps each to a status (see `From<AuthError> for ApiError`).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("email already registered")]
    EmailTaken,
    #[error("{field} rejected: {reason}")]
    WeakPassword { field: &'static str, reason: String },
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("no such account")]
    UnknownAccount,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AuthError {
    fn from(err: sqlx::Error) -> Self {
        Self::Internal(err.into())
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::InvalidCredentials => Self::InvalidCredentials,
            AuthError::WrongCurrentPassword => {
                Self::Validation(vec![FieldError::new("current_password", "is not the current password")])
            }
            // Registration cannot hide that an email is taken without an email
            // round trip; rate limiting keeps enumeration slow.
            AuthError::EmailTaken => Self::Conflict("An account with this email already exists."),
            AuthError::WeakPassword { field, reason } => {
                Self::Validation(vec![FieldError::new(field, reason)])
            }
            AuthError::InvalidRefreshToken => Self::InvalidRefreshToken,
            // The token was valid a moment ago; its account is gone.
            AuthError::UnknownAccount => Self::InvalidToken,
            AuthError::Internal(err) => Self::Internal(err),
        }
    }
}

/// How repeated failed logins lock an account: every `threshold` consecutive
/// failures lock it, for `base` the first time and twice as long each time
/// after, up to a day. A correct password works again once the lock expires.
#[derive(Clone, Copy, Debug)]
pub struct LockoutPolicy {
    pub threshold: u32,
    pub base: Duration,
}

const MAX_LOCK: Duration = Duration::from_hours(24);

impl LockoutPolicy {
    /// How long to lock after `failures` consecutive failures, if at all.
    #[must_use]
    pub fn lock_for(&self, failures: u32) -> Option<Duration> {
        if failures == 0 || !failures.is_multiple_of(self.threshold) {
            return None;
        }
        let doublings = (failures / self.threshold - 1).min(16);
        Some(self.base.saturating_mul(1 << doublings).min(MAX_LOCK))
    }
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
    pub display_name: Option<String>,
    pub roles: Vec<Role>,
    pub created_at: OffsetDateTime,
}

pub async fn register(db: &Pool, auth: &Auth, registration: Registration) -> Result<Account, AuthError> {
    auth.policy
        .check(&registration.password, &registration.email)
        .map_err(|reason| AuthError::WeakPassword { field: "password", reason })?;
    let hash = auth.hasher.hash(&registration.password).await?;
    let roles = [Role::User];
    let user = db::users::insert(
        db,
        NewUser {
            email: &registration.email,
            display_name: registration.display_name.as_ref(),
            password_hash: Some(&hash),
            roles: &roles,
        },
    )
    .await?
    .ok_or(AuthError::EmailTaken)?;
    Ok(account(user, roles.to_vec()))
}

/// Checks the credentials and starts a session.
///
/// An unknown email, a wrong password, a locked and a disabled account all
/// answer `InvalidCredentials`, and each costs one password hash, so neither
/// the answer nor its timing tells an attacker which accounts exist.
pub async fn login(
    db: &Pool,
    auth: &Auth,
    email: &Email,
    password: &Password,
) -> Result<TokenPair, AuthError> {
    let user = db::users::find_by_email(db, email).await?;
    let now = OffsetDateTime::now_utc();
    let usable = user
        .as_ref()
        .filter(|user| user.disabled_at.is_none() && user.locked_until.is_none_or(|until| until <= now));
    let verification =
        auth.hasher.verify(password, usable.and_then(|user| user.password_hash.as_deref())).await?;
    let Some(user) = usable else {
        if let Some(user) = &user {
            tracing::info!(user_id = %user.id, "login refused: account locked or disabled");
        }
        return Err(AuthError::InvalidCredentials);
    };
    match verification {
        Verification::Mismatch => {
            record_failure(db, auth, user.id).await?;
            Err(AuthError::InvalidCredentials)
        }
        Verification::Match | Verification::MatchNeedsRehash => {
            if verification == Verification::MatchNeedsRehash {
                let upgraded = auth.hasher.hash(password).await?;
                db::users::set_password_hash(db, user.id, &upgraded).await?;
                tracing::info!(user_id = %user.id, "password hash upgraded to current parameters");
            }
            if user.failed_logins > 0 || user.locked_until.is_some() {
                db::users::clear_failed_logins(db, user.id).await?;
            }
            sessions::start(db, auth, user.id, AuthMethod::Password).await
        }
    }
}

async fn record_failure(db: &Pool, auth: &Auth, user_id: Uuid) -> Result<(), AuthError> {
    let failures = db::users::count_failed_login(db, user_id).await?;
    if let Some(lock) = auth.lockout.lock_for(u32::try_from(failures).unwrap_or(u32::MAX)) {
        db::users::lock_until(db, user_id, OffsetDateTime::now_utc() + lock).await?;
        tracing::warn!(%user_id, failures, lock_secs = lock.as_secs(), "account locked after failed logins");
    }
    Ok(())
}

/// Changes the password of a signed-in user and ends all their sessions, so
/// that a thief holding a refresh token is locked out too.
pub async fn change_password(
    db: &Pool,
    auth: &Auth,
    user_id: Uuid,
    current: &Password,
    new: &Password,
) -> Result<(), AuthError> {
    let user = db::users::find_by_id(db, user_id).await?.ok_or(AuthError::UnknownAccount)?;
    let verification = auth.hasher.verify(current, user.password_hash.as_deref()).await?;
    if verification == Verification::Mismatch {
        // Counted like a failed login: a stolen access token must not become
        // an oracle for guessing the password.
        record_failure(db, auth, user.id).await?;
        return Err(AuthError::WrongCurrentPassword);
    }
    let email = Email::try_from(user.email).map_err(|reason| anyhow::anyhow!("stored email: {reason}"))?;
    auth.policy
        .check(new, &email)
        .map_err(|reason| AuthError::WeakPassword { field: "new_password", reason })?;
    let hash = auth.hasher.hash(new).await?;
    db::users::set_password_hash(db, user_id, &hash).await?;
    sessions::end_all(db, user_id).await
}

/// The caller's own account.
pub async fn profile(db: &Pool, user_id: Uuid) -> Result<Account, AuthError> {
    let user = db::users::find_by_id(db, user_id).await?.ok_or(AuthError::UnknownAccount)?;
    let roles = db::users::roles(db, user_id).await?;
    Ok(account(user, roles))
}

fn account(user: UserRow, roles: Vec<Role>) -> Account {
    Account {
        id: user.id,
        email: user.email,
        display_name: user.display_name,
        roles,
        created_at: user.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_start_at_the_threshold_and_double() {
        let policy = LockoutPolicy { threshold: 5, base: Duration::from_mins(1) };
        assert_eq!(policy.lock_for(4), None);
        assert_eq!(policy.lock_for(5), Some(Duration::from_mins(1)));
        assert_eq!(policy.lock_for(6), None);
        assert_eq!(policy.lock_for(10), Some(Duration::from_mins(2)));
        assert_eq!(policy.lock_for(15), Some(Duration::from_mins(4)));
        assert_eq!(policy.lock_for(5 * 40), Some(MAX_LOCK), "capped at a day");
    }
}
