//! The `users` and `user_roles` tables.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Backend, Pool};
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
    pub failed_logins: i32,
    pub locked_until: Option<OffsetDateTime>,
    pub disabled_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// The columns of `UserRow`, for queries that return one.
macro_rules! user_columns {
    () => {
        "id, email, display_name, password_hash, failed_logins, locked_until, disabled_at, created_at"
    };
}

pub struct NewUser<'a> {
    pub email: &'a Email,
    pub display_name: Option<&'a DisplayName>,
    pub password_hash: Option<&'a str>,
    pub roles: &'a [Role],
}

/// Inserts the user with their roles; `None` when the email is taken.
pub async fn insert(pool: &Pool, user: NewUser<'_>) -> Result<Option<UserRow>, sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query_as::<Backend, UserRow>(concat!(
        "INSERT INTO users (id, email, display_name, password_hash, created_at, updated_at) ",
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
        user_columns!()
    ))
    .bind(Uuid::new_v4())
    .bind(user.email.as_str())
    .bind(user.display_name.map(DisplayName::as_str))
    .bind(user.password_hash)
    .bind(now)
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(sqlx::Error::Database(err)) if err.is_unique_violation() => return Ok(None),
        Err(err) => return Err(err),
    };
    for role in user.roles {
        sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
            .bind(row.id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Some(row))
}

pub async fn find_by_email(pool: &Pool, email: &Email) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1"))
        .bind(email.as_str())
        .fetch_optional(pool)
        .await
}

pub async fn find_by_id(pool: &Pool, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The user's roles, sorted; names this build does not know are dropped.
pub async fn roles(pool: &Pool, id: Uuid) -> Result<Vec<Role>, sqlx::Error> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT role FROM user_roles WHERE user_id = $1").bind(id).fetch_all(pool).await?;
    let mut roles: Vec<Role> = names.iter().filter_map(|name| Role::parse(name)).collect();
    roles.sort();
    Ok(roles)
}

/// Counts one more failed login and returns the new count. The increment
/// happens in the database, so concurrent attempts are all counted.
pub async fn count_failed_login(pool: &Pool, id: Uuid) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET failed_logins = failed_logins + 1, updated_at = $2 WHERE id = $1 RETURNING failed_logins",
    )
    .bind(id)
    .bind(OffsetDateTime::now_utc())
    .fetch_one(pool)
    .await
}

pub async fn lock_until(pool: &Pool, id: Uuid, until: OffsetDateTime) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET locked_until = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(until)
        .bind(OffsetDateTime::now_utc())
        .execute(pool)
        .await
        .map(drop)
}

/// Clears the failure count and any lock after a successful login.
pub async fn clear_failed_logins(pool: &Pool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(OffsetDateTime::now_utc())
        .execute(pool)
        .await
        .map(drop)
}

pub async fn set_password_hash(pool: &Pool, id: Uuid, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(OffsetDateTime::now_utc())
        .execute(pool)
        .await
        .map(drop)
}

/// Whether the account exists and is not disabled; checked on every request
/// with one of this service's tokens, so that disabling takes effect at once.
pub async fn is_active(pool: &Pool, id: Uuid) -> Result<bool, sqlx::Error> {
    let disabled: Option<Option<OffsetDateTime>> =
        sqlx::query_scalar("SELECT disabled_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(matches!(disabled, Some(None)))
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
pub async fn set_roles(pool: &Pool, id: Uuid, roles: &[Role]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
    for role in roles {
        sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
            .bind(id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Accounts that hold `admin` and are not disabled.
pub async fn count_active_admins(pool: &Pool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_roles JOIN users ON users.id = user_roles.user_id \
         WHERE user_roles.role = 'admin' AND users.disabled_at IS NULL",
    )
    .fetch_one(pool)
    .await
}

pub async fn disable(pool: &Pool, id: Uuid) -> Result<(), sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    sqlx::query("UPDATE users SET disabled_at = $2, updated_at = $3 WHERE id = $1 AND disabled_at IS NULL")
        .bind(id)
        .bind(now)
        .bind(now)
        .execute(pool)
        .await
        .map(drop)
}
