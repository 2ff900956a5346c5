//! What administrators do to accounts: list them, set their roles, disable
//! them, lift their login throttle, and (from the command line) create the
//! first administrator.
//!
//! Every change of roles or account state runs under one lock
//! (`db::users::lock_admin_changes`), so that "would an active admin
//! remain?" and the change are one step even when two admins act at once;
//! and each is recorded in the audit trail, with the administrator who did
//! it, in the transaction of the change.

use uuid::Uuid;

use crate::{
    audit::{self, Actor, Event, Outcome},
    auth::{
        Auth, account_changed,
        accounts::{self, Account},
        password::{Overloaded, Verification},
        sessions, throttle,
    },
    authz::Role,
    db::{
        self, Pool, Tx,
        users::{NewUser, UserRow},
    },
    domain::{Email, Page, PageQuery, Password},
};

/// Why an administration failed, in this service's terms.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no such account")]
    NoSuchAccount,
    #[error("this would leave no active admin")]
    LastAdmin,
    #[error("administrators cannot disable their own account or drop their own admin role")]
    OwnAccount,
    #[error("an account with this email exists already")]
    AccountExists,
    #[error("that is not the account's password")]
    NotTheAccountsPassword,
    #[error("the password {0}")]
    WeakPassword(String),
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// An account as an administrator sees it.
pub struct AdminView {
    pub account: Account,
    pub disabled: bool,
}

/// A page of all accounts.
pub async fn accounts(db: &Pool, query: &PageQuery) -> Result<Page<AdminView>, AdminError> {
    let users = db::users::page(db, query.after, query.rows_to_fetch()).await?;
    let page = query.page(users, |user| user.id);
    let mut items = Vec::with_capacity(page.items.len());
    for user in page.items {
        let roles = db::users::roles(db, user.id).await?;
        items.push(view(user, roles));
    }
    Ok(Page { items, next_after: page.next_after })
}

/// Gives the account exactly `roles` (plus `user`, which every account
/// holds); refused when it would take the role from the last active admin.
pub async fn set_roles(db: &Pool, by: Actor, user_id: Uuid, roles: &[Role]) -> Result<AdminView, AdminError> {
    let mut roles = roles.to_vec();
    roles.push(Role::User);
    roles.sort();
    roles.dedup();
    if !roles.contains(&Role::Admin) {
        refuse_own_account(&by, user_id)?;
    }
    let mut tx = db.begin().await?;
    let (user, current) = locked_account(&mut tx, user_id).await?;
    if !roles.contains(&Role::Admin) {
        ensure_another_admin_remains(&mut tx, &user, &current).await?;
    }
    db::users::set_roles(&mut tx, user_id, &roles).await?;
    let names = |roles: &[Role]| roles.iter().map(|role| role.as_str()).collect::<Vec<_>>();
    let changed = Event::new("admin.roles_changed", Outcome::Success)
        .actor(by)
        .on_account(user_id)
        .detail("from", names(&current))
        .detail("to", names(&roles));
    let audited = audit::append_in(&mut tx, changed).await?;
    tx.commit().await?;
    account_changed();
    audited.log();
    Ok(view(user, roles))
}

/// Disables an account and ends its sessions at once: its refresh tokens
/// are revoked and its access tokens fail the per-request account check.
/// Refused for the last active admin.
pub async fn disable(db: &Pool, by: Actor, user_id: Uuid) -> Result<(), AdminError> {
    refuse_own_account(&by, user_id)?;
    let mut tx = db.begin().await?;
    let (user, roles) = locked_account(&mut tx, user_id).await?;
    ensure_another_admin_remains(&mut tx, &user, &roles).await?;
    db::users::disable(&mut tx, user_id).await?;
    sessions::end_all_in(&mut tx, user_id).await?;
    let disabled = Event::new("admin.account_disabled", Outcome::Success)
        .actor(by)
        .on_account(user_id)
        .detail("sessions", "revoked");
    let audited = audit::append_in(&mut tx, disabled).await?;
    tx.commit().await?;
    account_changed();
    audited.log();
    Ok(())
}

/// Lifts the login throttle of an account (see `auth::throttle`).
pub async fn unlock(db: &Pool, by: Actor, user_id: Uuid) -> Result<(), AdminError> {
    db::users::find_by_id(db, user_id).await?.ok_or(AdminError::NoSuchAccount)?;
    throttle::unlock(db, user_id).await?;
    audit::append_now(
        db,
        Event::new("admin.account_unlocked", Outcome::Success).actor(by).on_account(user_id),
    )
    .await?;
    Ok(())
}

/// `unlock`, for the account with this email (the command line).
pub async fn unlock_by_email(db: &Pool, email: &Email) -> Result<Uuid, AdminError> {
    let user = db::users::find_by_email(db, email).await?.ok_or(AdminError::NoSuchAccount)?;
    unlock(db, Actor::system(), user.id).await?;
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
    /// Promote it, if the password given is that account's own.
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
) -> Result<AdminCreated, AdminError> {
    let hashing = auth.hasher.admit()?;
    if let Some(user) = db::users::find_by_email(db, email).await? {
        if existing == ExistingAccount::Refuse {
            return Err(AdminError::AccountExists);
        }
        if hashing.verify(password, user.password_hash.as_deref()).await? == Verification::Mismatch {
            return Err(AdminError::NotTheAccountsPassword);
        }
        let mut roles = db::users::roles(db, user.id).await?;
        roles.push(Role::Admin);
        set_roles(db, Actor::system(), user.id, &roles).await?;
        return Ok(AdminCreated::Promoted(user.id));
    }
    if existing == ExistingAccount::PromoteWithItsPassword {
        return Err(AdminError::NoSuchAccount);
    }
    auth.policy.check(password, email).map_err(AdminError::WeakPassword)?;
    let hash = hashing.hash(password).await?;
    let user = db::users::insert(
        db,
        NewUser {
            email,
            display_name: None,
            password_hash: Some(&hash),
            roles: &[Role::User, Role::Admin],
            // The operator vouches for the address of the first admin.
            email_verified: true,
        },
    )
    .await?
    .ok_or(AdminError::AccountExists)?;
    let created = Event::new("admin.account_created", Outcome::Success)
        .actor(Actor::system())
        .on_account(user.id)
        .detail("roles", vec![Role::User.as_str(), Role::Admin.as_str()]);
    audit::append_now(db, created).await?;
    Ok(AdminCreated::New(user.id))
}

/// The account and its roles, under the admin lock for the rest of `tx`.
async fn locked_account(tx: &mut Tx<'_>, user_id: Uuid) -> Result<(UserRow, Vec<Role>), AdminError> {
    db::users::lock_admin_changes(tx).await?;
    let user = db::users::find_by_id(&mut **tx, user_id).await?.ok_or(AdminError::NoSuchAccount)?;
    let roles = db::users::roles(&mut **tx, user_id).await?;
    Ok((user, roles))
}

/// An administrator locking themselves out is a slip, not a decision:
/// another admin must take their role or account away.
fn refuse_own_account(by: &Actor, user_id: Uuid) -> Result<(), AdminError> {
    let own = by.kind == "account" && by.id.as_deref() == Some(user_id.to_string().as_str());
    if own { Err(AdminError::OwnAccount) } else { Ok(()) }
}

/// The last-admin guard: taking an active admin's role or account away is
/// refused when no other active admin remains. Call under the admin lock.
async fn ensure_another_admin_remains(
    tx: &mut Tx<'_>,
    user: &UserRow,
    roles: &[Role],
) -> Result<(), AdminError> {
    let active_admin = roles.contains(&Role::Admin) && user.disabled_at.is_none();
    if active_admin && db::users::count_active_admins(tx).await? <= 1 {
        return Err(AdminError::LastAdmin);
    }
    Ok(())
}

fn view(user: UserRow, roles: Vec<Role>) -> AdminView {
    AdminView { disabled: user.disabled_at.is_some(), account: accounts::account(user, roles) }
}
