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
    #[error("no such user")]
    NoSuchUser,
    #[error("this would leave no active admin")]
    LastAdmin,
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
            AuthError::NoSuchUser => Self::NotFound,
            AuthError::LastAdmin => {
                Self::Conflict("The last active admin cannot lose the admin role or be disabled.")
            }
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

/// An account as an administrator sees it.
pub struct AdminView {
    pub account: Account,
    pub disabled: bool,
}

/// A page of all accounts, for administrators.
pub async fn page_for_admin(
    db: &Pool,
    after: Option<Uuid>,
    limit: u32,
) -> Result<(Vec<AdminView>, Option<Uuid>), AuthError> {
    let mut users = db::users::page(db, after, limit + 1).await?;
    let next = if users.len() > limit as usize {
        users.truncate(limit as usize);
        users.last().map(|user| user.id)
    } else {
        None
    };
    let mut views = Vec::with_capacity(users.len());
    for user in users {
        views.push(admin_view(db, user).await?);
    }
    Ok((views, next))
}

/// Gives the user exactly `roles` (plus `user`, which every account holds).
/// Refused when it would take the admin role from the last active admin.
pub async fn set_roles(db: &Pool, user_id: Uuid, roles: &[Role]) -> Result<AdminView, AuthError> {
    let user = db::users::find_by_id(db, user_id).await?.ok_or(AuthError::NoSuchUser)?;
    let mut roles = roles.to_vec();
    roles.push(Role::User);
    roles.sort();
    roles.dedup();
    let current = db::users::roles(db, user_id).await?;
    let demotes_admin = current.contains(&Role::Admin) && !roles.contains(&Role::Admin);
    if demotes_admin && user.disabled_at.is_none() && db::users::count_active_admins(db).await? <= 1 {
        return Err(AuthError::LastAdmin);
    }
    db::users::set_roles(db, user_id, &roles).await?;
    tracing::info!(%user_id, roles = ?roles, "roles changed by an administrator");
    admin_view(db, user).await
}

/// Disables an account and ends its sessions at once: its refresh tokens are
/// revoked, and its access tokens fail the per-request account check.
pub async fn disable(db: &Pool, user_id: Uuid) -> Result<(), AuthError> {
    let user = db::users::find_by_id(db, user_id).await?.ok_or(AuthError::NoSuchUser)?;
    let is_admin = db::users::roles(db, user_id).await?.contains(&Role::Admin);
    if is_admin && user.disabled_at.is_none() && db::users::count_active_admins(db).await? <= 1 {
        return Err(AuthError::LastAdmin);
    }
    db::users::disable(db, user_id).await?;
    sessions::end_all(db, user_id).await?;
    tracing::warn!(%user_id, "account disabled by an administrator; sessions revoked");
    Ok(())
}

/// What `create-admin` did.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminCreated {
    New(Uuid),
    Promoted(Uuid),
}

/// Creates an administrator account, or grants `admin` to the existing
/// account with this email (its password is then left unchanged).
pub async fn create_admin(
    db: &Pool,
    auth: &Auth,
    email: &Email,
    password: &Password,
) -> Result<AdminCreated, AuthError> {
    if let Some(user) = db::users::find_by_email(db, email).await? {
        let mut roles = db::users::roles(db, user.id).await?;
        roles.push(Role::Admin);
        set_roles(db, user.id, &roles).await?;
        return Ok(AdminCreated::Promoted(user.id));
    }
    auth.policy
        .check(password, email)
        .map_err(|reason| AuthError::WeakPassword { field: "password", reason })?;
    let hash = auth.hasher.hash(password).await?;
    let user = db::users::insert(
        db,
        NewUser { email, display_name: None, password_hash: Some(&hash), roles: &[Role::User, Role::Admin] },
    )
    .await?
    .ok_or(AuthError::EmailTaken)?;
    Ok(AdminCreated::New(user.id))
}

async fn admin_view(db: &Pool, user: UserRow) -> Result<AdminView, AuthError> {
    let roles = db::users::roles(db, user.id).await?;
    let disabled = user.disabled_at.is_some();
    Ok(AdminView { account: account(user, roles), disabled })
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
