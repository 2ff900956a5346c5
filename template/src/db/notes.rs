//! The `notes` table. Writes filter on the owner in SQL, so a request can
//! never change a note it was not allowed to, even if a check upstream were
//! forgotten.

use time::OffsetDateTime;
use uuid::Uuid;

use super::Pool;
use crate::domain::{NoteBody, NoteTitle};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NoteRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    pub body: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

macro_rules! note_columns {
    () => {
        "id, owner_id, title, body, created_at, updated_at"
    };
}

pub async fn insert(
    pool: &Pool,
    owner: Uuid,
    title: &NoteTitle,
    body: &NoteBody,
) -> Result<NoteRow, sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    sqlx::query_as(concat!(
        "INSERT INTO notes (id, owner_id, title, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
        note_columns!()
    ))
    .bind(Uuid::now_v7())
    .bind(owner)
    .bind(title.as_str())
    .bind(body.as_str())
    .bind(now)
    .bind(now)
    .fetch_one(pool)
    .await
}

pub async fn find(pool: &Pool, id: Uuid) -> Result<Option<NoteRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", note_columns!(), " FROM notes WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Up to `limit` notes of `owner` after the id `after`, oldest first.
pub async fn page_of_owner(
    pool: &Pool,
    owner: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<NoteRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        note_columns!(),
        " FROM notes WHERE owner_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(owner)
    .bind(after.unwrap_or(Uuid::nil()))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// Changes the given fields of `owner`'s note `id`; `None` when there is no
/// such note of that owner.
pub async fn update(
    pool: &Pool,
    id: Uuid,
    owner: Uuid,
    title: Option<&NoteTitle>,
    body: Option<&NoteBody>,
) -> Result<Option<NoteRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "UPDATE notes SET title = COALESCE($3, title), body = COALESCE($4, body), updated_at = $5 ",
        "WHERE id = $1 AND owner_id = $2 RETURNING ",
        note_columns!()
    ))
    .bind(id)
    .bind(owner)
    .bind(title.map(NoteTitle::as_str))
    .bind(body.map(NoteBody::as_str))
    .bind(OffsetDateTime::now_utc())
    .fetch_optional(pool)
    .await
}

/// Deletes `owner`'s note `id`; `false` when there is no such note of that owner.
pub async fn delete(pool: &Pool, id: Uuid, owner: Uuid) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM notes WHERE id = $1 AND owner_id = $2")
        .bind(id)
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
}
