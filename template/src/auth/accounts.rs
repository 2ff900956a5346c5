//! Local accounts: registration, login with throttling, password changes,
//! and what administrators do to accounts.

use std::net::IpAddr;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Auth, AuthMethod,
    password::{Overloaded, Verification},
    sessions::{self, TokenPair},
    throttle,
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
    #[error("an account with this email exists already")]
    AccountExists,
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
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
            AuthError::AccountExists => Self::Conflict("An account with this email exists already."),
            AuthError::Overloaded(_) => Self::Overloaded,
            AuthError::Internal(err) => Self::Internal(err),
        }
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
    let hash = auth.hasher.admit()?.hash(&registration.password).await?;
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
/// An unknown email, a wrong password, a disabled account and a throttled
/// check (see `throttle`) all answer `InvalidCredentials`, and each costs
/// one password hash, so neither the answer nor its timing tells an attacker
/// which accounts exist or whether the throttle holds.
pub async fn login(
    db: &Pool,
    auth: &Auth,
    email: &Email,
    password: &Password,
    client: IpAddr,
) -> Result<TokenPair, AuthError> {
    let hashing = auth.hasher.admit()?;
    let user = db::users::find_by_email(db, email).await?.filter(|user| user.disabled_at.is_none());
    let checked = match &user {
        Some(user) => auth.throttle.reserve(db, user.id, client).await?,
        None => false,
    };
    let stored = user.as_ref().filter(|_| checked).and_then(|user| user.password_hash.as_deref());
    let verification = hashing.verify(password, stored).await?;
    let Some(user) = user.filter(|_| checked) else {
        return Err(AuthError::InvalidCredentials);
    };
    if verification == Verification::Mismatch {
        // The reserved check stays counted: it was a failed guess.
        return Err(AuthError::InvalidCredentials);
    }
    auth.throttle.succeeded(db, user.id, client).await?;
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
    tx.commit().await?;
    Ok(())
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
/// The check and the change are one step under the admin lock.
pub async fn set_roles(db: &Pool, user_id: Uuid, roles: &[Role]) -> Result<AdminView, AuthError> {
    let mut roles = roles.to_vec();
    roles.push(Role::User);
    roles.sort();
    roles.dedup();
    let mut tx = db.begin().await?;
    db::users::lock_admin_changes(&mut tx).await?;
    let user = db::users::find_by_id(&mut *tx, user_id).await?.ok_or(AuthError::NoSuchUser)?;
    let current = db::users::roles(&mut *tx, user_id).await?;
    let demotes_admin = current.contains(&Role::Admin) && !roles.contains(&Role::Admin);
    if demotes_admin && user.disabled_at.is_none() && db::users::count_active_admins(&mut tx).await? <= 1 {
        return Err(AuthError::LastAdmin);
    }
    db::users::set_roles(&mut tx, user_id, &roles).await?;
    tx.commit().await?;
    tracing::info!(%user_id, roles = ?roles, "roles changed by an administrator");
    Ok(AdminView { disabled: user.disabled_at.is_some(), account: account(user, roles) })
}

/// Disables an account and ends its sessions at once: its refresh tokens are
/// revoked, and its access tokens fail the per-request account check. The
/// last-admin check and the change are one step under the admin lock.
pub async fn disable(db: &Pool, user_id: Uuid) -> Result<(), AuthError> {
    let mut tx = db.begin().await?;
    db::users::lock_admin_changes(&mut tx).await?;
    let user = db::users::find_by_id(&mut *tx, user_id).await?.ok_or(AuthError::NoSuchUser)?;
    let is_admin = db::users::roles(&mut *tx, user_id).await?.contains(&Role::Admin);
    if is_admin && user.disabled_at.is_none() && db::users::count_active_admins(&mut tx).await? <= 1 {
        return Err(AuthError::LastAdmin);
    }
    db::users::disable(&mut tx, user_id).await?;
    sessions::end_all_in(&mut tx, user_id).await?;
    tx.commit().await?;
    tracing::warn!(%user_id, "account disabled by an administrator; sessions revoked");
    Ok(())
}

/// Lifts the login throttle of an account (see `throttle`).
pub async fn unlock(db: &Pool, user_id: Uuid) -> Result<(), AuthError> {
    db::users::find_by_id(db, user_id).await?.ok_or(AuthError::NoSuchUser)?;
    throttle::unlock(db, user_id).await?;
    tracing::info!(%user_id, "login throttle lifted");
    Ok(())
}

/// `unlock`, for the account with this email (the command line).
pub async fn unlock_by_email(db: &Pool, email: &Email) -> Result<Uuid, AuthError> {
    let user = db::users::find_by_email(db, email).await?.ok_or(AuthError::NoSuchUser)?;
    unlock(db, user.id).await?;
    Ok(user.id)
}

/// What `create-admin` did.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminCreated {
    New(Uuid),
    Promoted(Uuid),
}

/// Whether `create-admin` may make an existing account an administrator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExistingAccount {
    Refuse,
    /// Promote it, if `password` is that account's own password.
    PromoteWithItsPassword,
}

/// Creates an administrator account. An account that exists already (which
/// anyone may have registered first) is promoted only when asked for
/// explicitly and proven with that account's own password.
pub async fn create_admin(
    db: &Pool,
    auth: &Auth,
    email: &Email,
    password: &Password,
    existing: ExistingAccount,
) -> Result<AdminCreated, AuthError> {
    let hashing = auth.hasher.admit()?;
    if let Some(user) = db::users::find_by_email(db, email).await? {
        if existing == ExistingAccount::Refuse {
            return Err(AuthError::AccountExists);
        }
        if hashing.verify(password, user.password_hash.as_deref()).await? == Verification::Mismatch {
            return Err(AuthError::WrongCurrentPassword);
        }
        let mut roles = db::users::roles(db, user.id).await?;
        roles.push(Role::Admin);
        set_roles(db, user.id, &roles).await?;
        return Ok(AdminCreated::Promoted(user.id));
    }
    if existing == ExistingAccount::PromoteWithItsPassword {
        return Err(AuthError::NoSuchUser);
    }
    auth.policy
        .check(password, email)
        .map_err(|reason| AuthError::WeakPassword { field: "password", reason })?;
    let hash = hashing.hash(password).await?;
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
