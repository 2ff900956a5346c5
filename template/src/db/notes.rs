//! The `notes` table. Writes filter on the owner in SQL, so a request can
//! never change a note it was not allowed to, even if a check upstream were
//! forgotten. Bodies arrive here as stored: sealed already when the note is
//! confidential (see `notes`).

use time::OffsetDateTime;
use uuid::Uuid;

use super::Pool;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NoteRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    /// The text, or its sealed form when `confidential`.
    pub body: String,
    pub confidential: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A note as it is written: the body already in its stored form.
pub struct StoredNote<'a> {
    pub title: &'a str,
    pub body: &'a str,
    pub confidential: bool,
}

macro_rules! notes_columns {
    () => {
        "id, owner_id, title, body, confidential, created_at, updated_at"
    };
}

/// Inserts the note `id` of `owner`: the caller chooses the id, because a
/// sealed body is bound to it.
pub async fn insert(
    pool: &Pool,
    id: Uuid,
    owner: Uuid,
    new: &StoredNote<'_>,
) -> Result<NoteRow, sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    sqlx::query_as(concat!(
        "INSERT INTO notes (id, owner_id, title, body, confidential, created_at, updated_at) ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
        notes_columns!()
    ))
    .bind(id)
    .bind(owner)
    .bind(new.title)
    .bind(new.body)
    .bind(new.confidential)
    .bind(now)
    .bind(now)
    .fetch_one(pool)
    .await
}

pub async fn find(pool: &Pool, id: Uuid) -> Result<Option<NoteRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", notes_columns!(), " FROM notes WHERE id = $1"))
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
        notes_columns!(),
        " FROM notes WHERE owner_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(owner)
    .bind(after.unwrap_or(Uuid::nil()))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// Replaces `owner`'s note `id` if its stored body is still `read_body`;
/// `None` when there is no such note of that owner or another write changed
/// it since it was read (compare and swap: the caller reads again).
pub async fn replace(
    pool: &Pool,
    id: Uuid,
    owner: Uuid,
    read_body: &str,
    note: &StoredNote<'_>,
) -> Result<Option<NoteRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "UPDATE notes SET title = $4, body = $5, confidential = $6, updated_at = $7 ",
        "WHERE id = $1 AND owner_id = $2 AND body = $3 RETURNING ",
        notes_columns!()
    ))
    .bind(id)
    .bind(owner)
    .bind(read_body)
    .bind(note.title)
    .bind(note.body)
    .bind(note.confidential)
    .bind(OffsetDateTime::now_utc())
    .fetch_optional(pool)
    .await
}

/// Up to `limit` confidential notes (id and stored body) whose body is not
/// sealed with the prefix `sealed_prefix`, i.e. under another key. Key ids
/// hold no LIKE wildcards.
pub async fn sealed_otherwise(
    pool: &Pool,
    sealed_prefix: &str,
    limit: u32,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, body FROM notes WHERE confidential AND body NOT LIKE $1 ORDER BY id LIMIT $2")
        .bind(format!("{sealed_prefix}%"))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
}

/// Sets the stored body of note `id` if it is still `read_body`; `false`
/// when another write changed it in between (that write sealed it anew).
pub async fn reseal_body(pool: &Pool, id: Uuid, read_body: &str, body: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE notes SET body = $3 WHERE id = $1 AND body = $2")
        .bind(id)
        .bind(read_body)
        .bind(body)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
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
