//! The `users` and `user_roles` tables, and the lock that serializes changes
//! to who is an admin.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Backend, Pool, Tx};
use crate::{
    authz::Role,
    domain::{DisplayName, Email},
};

/// A row of `users`. It holds the password hash, so it never leaves the
/// service layer: responses are built from it field by field.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub email_verified_at: Option<OffsetDateTime>,
    pub disabled_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// The columns of `UserRow`, for queries that return one.
macro_rules! user_columns {
    () => {
        "id, email, display_name, password_hash, email_verified_at, disabled_at, created_at"
    };
}

/// What every request with a token checks about its account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessState {
    pub disabled: bool,
    pub email_verified: bool,
    /// Whether the session asked about still has a token that is not
    /// revoked (false when none was asked about).
    pub session_live: bool,
    /// The roles the account holds now, sorted.
    pub roles: Vec<Role>,
}

pub struct NewUser<'a> {
    pub email: &'a Email,
    pub display_name: Option<&'a DisplayName>,
    pub password_hash: Option<&'a str>,
    pub roles: &'a [Role],
    /// Whether someone trusted already proved the address (an identity
    /// provider that says so).
    pub email_verified: bool,
}

/// Inserts the user with their roles; `None` when the email is taken.
pub async fn insert(pool: &Pool, user: NewUser<'_>) -> Result<Option<UserRow>, sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query_as::<Backend, UserRow>(concat!(
        "INSERT INTO users (id, email, display_name, password_hash, email_verified_at, created_at, updated_at) ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
        user_columns!()
    ))
    .bind(Uuid::new_v4())
    .bind(user.email.as_str())
    .bind(user.display_name.map(DisplayName::as_str))
    .bind(user.password_hash)
    .bind(user.email_verified.then_some(now))
    .bind(now)
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(sqlx::Error::Database(err)) if err.is_unique_violation() => return Ok(None),
        Err(err) => return Err(err),
    };
    set_roles(&mut tx, row.id, user.roles).await?;
    tx.commit().await?;
    Ok(Some(row))
}

pub async fn find_by_email(pool: &Pool, email: &Email) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1"))
        .bind(email.as_str())
        .fetch_optional(pool)
        .await
}

pub async fn find_by_id<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    id: Uuid,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// A user with its roles, sorted, in one round trip.
pub async fn find_with_roles(pool: &Pool, id: Uuid) -> Result<Option<(UserRow, Vec<Role>)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Joined {
        #[sqlx(flatten)]
        user: UserRow,
        role: Option<String>,
    }
    let rows: Vec<Joined> = sqlx::query_as(
        "SELECT users.id, email, display_name, password_hash, email_verified_at, disabled_at, created_at, \
           user_roles.role \
         FROM users LEFT JOIN user_roles ON user_roles.user_id = users.id WHERE users.id = $1",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let mut roles: Vec<Role> = rows.iter().filter_map(|row| Role::parse(row.role.as_deref()?)).collect();
    roles.sort();
    Ok(rows.into_iter().next().map(|row| (row.user, roles)))
}

/// The user's roles, sorted; names this build does not know are dropped.
pub async fn roles<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    id: Uuid,
) -> Result<Vec<Role>, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar("SELECT role FROM user_roles WHERE user_id = $1")
        .bind(id)
        .fetch_all(executor)
        .await?;
    let mut roles: Vec<Role> = names.iter().filter_map(|name| Role::parse(name)).collect();
    roles.sort();
    Ok(roles)
}

/// The account's state for a request with a token, and whether the
/// token's `session` (a refresh-token family) is still live, in one round
/// trip; `None` when the account does not exist (any more).
pub async fn access_state(
    pool: &Pool,
    id: Uuid,
    session: Option<Uuid>,
) -> Result<Option<AccessState>, sqlx::Error> {
    let rows: Vec<(bool, bool, bool, Option<String>)> = sqlx::query_as(
        "SELECT users.disabled_at IS NOT NULL, users.email_verified_at IS NOT NULL, \
           EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = $2 AND revoked_at IS NULL), \
           user_roles.role \
         FROM users LEFT JOIN user_roles ON user_roles.user_id = users.id WHERE users.id = $1",
    )
    .bind(id)
    .bind(session)
    .fetch_all(pool)
    .await?;
    let Some((disabled, email_verified, session_live, _)) = rows.first().cloned() else {
        return Ok(None);
    };
    let mut roles: Vec<Role> =
        rows.iter().filter_map(|(_, _, _, role)| Role::parse(role.as_deref()?)).collect();
    roles.sort();
    Ok(Some(AccessState { disabled, email_verified, session_live, roles }))
}

/// Locks the account's row for the rest of `tx`; `Some(disabled)`, or
/// `None` when there is no such account. Every change to an account's
/// sessions takes this lock first, so that a refresh and a revocation of
/// the same account never interleave.
pub async fn lock(tx: &mut Tx<'_>, id: Uuid) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET updated_at = updated_at WHERE id = $1 RETURNING disabled_at IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

pub async fn set_password_hash<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    id: Uuid,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(OffsetDateTime::now_utc())
        .execute(executor)
        .await
        .map(drop)
}

/// Makes `email` the account's address, proven now; `false` when another
/// account has it.
pub async fn confirm_email<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    id: Uuid,
    email: &str,
) -> Result<bool, sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    let updated =
        sqlx::query("UPDATE users SET email = $2, email_verified_at = $3, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(email)
            .bind(now)
            .execute(executor)
            .await;
    match updated {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(err)) if err.is_unique_violation() => Ok(false),
        Err(err) => Err(err),
    }
}

/// Marks the account's current address as proven (a reset link reached it).
pub async fn mark_email_verified<'e>(
    executor: impl sqlx::Executor<'e, Database = Backend>,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET email_verified_at = COALESCE(email_verified_at, $2) WHERE id = $1")
        .bind(id)
        .bind(OffsetDateTime::now_utc())
        .execute(executor)
        .await
        .map(drop)
}

/// Up to `limit` users after the id `after`, by id.
pub async fn page(pool: &Pool, after: Option<Uuid>, limit: u32) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE id > $1 ORDER BY id LIMIT $2"))
        .bind(after.unwrap_or(Uuid::nil()))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
}

/// Replaces the user's roles.
pub async fn set_roles(tx: &mut Tx<'_>, id: Uuid, roles: &[Role]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1").bind(id).execute(&mut **tx).await?;
    for role in roles {
        sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
            .bind(id)
            .bind(role.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Takes the lock that every change of roles or account state holds for
/// the rest of `tx`: two admins acting at once are served one after the
/// other, each seeing what the other did.
pub async fn lock_admin_changes(tx: &mut Tx<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE admin_guard SET changed_at = $1 WHERE id = 1")
        .bind(OffsetDateTime::now_utc())
        .execute(&mut **tx)
        .await
        .map(drop)
}

/// Accounts that hold `admin` and are not disabled.
pub async fn count_active_admins(tx: &mut Tx<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_roles JOIN users ON users.id = user_roles.user_id \
         WHERE user_roles.role = 'admin' AND users.disabled_at IS NULL",
    )
    .fetch_one(&mut **tx)
    .await
}

pub async fn disable(tx: &mut Tx<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    sqlx::query("UPDATE users SET disabled_at = $2, updated_at = $3 WHERE id = $1 AND disabled_at IS NULL")
        .bind(id)
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map(drop)
}
