//! Notes, the example resource: the object-level rules (see
//! `authz::can_read_note`) applied to each note. A note the caller may not
//! see is reported exactly like a missing one, so ids cannot be probed.

use uuid::Uuid;

use crate::{
    auth::Principal,
    authz,
    db::{self, Pool, notes::NoteRow},
    domain::{NoteBody, NoteTitle, PageQuery},
    http::ApiError,
};

/// A page of the caller's own notes; admins too see only their own here.
pub async fn page(
    db: &Pool,
    principal: &Principal,
    query: &PageQuery,
) -> Result<(Vec<NoteRow>, Option<Uuid>), ApiError> {
    let owner = principal.user_id()?;
    let limit = query.limit();
    let mut notes = db::notes::page_of_owner(db, owner, query.after, limit + 1).await?;
    let more = notes.len() > limit as usize;
    notes.truncate(limit as usize);
    let next = if more { notes.last().map(|note| note.id) } else { None };
    Ok((notes, next))
}

pub async fn create(
    db: &Pool,
    principal: &Principal,
    title: &NoteTitle,
    body: &NoteBody,
) -> Result<NoteRow, ApiError> {
    Ok(db::notes::insert(db, principal.user_id()?, title, body).await?)
}

pub async fn get(db: &Pool, principal: &Principal, id: Uuid) -> Result<NoteRow, ApiError> {
    let note = db::notes::find(db, id).await?.ok_or(ApiError::NotFound)?;
    if authz::can_read_note(principal, note.owner_id) { Ok(note) } else { Err(ApiError::NotFound) }
}

pub async fn update(
    db: &Pool,
    principal: &Principal,
    id: Uuid,
    title: Option<&NoteTitle>,
    body: Option<&NoteBody>,
) -> Result<NoteRow, ApiError> {
    let owner = principal.user_id().map_err(|_| ApiError::NotFound)?;
    db::notes::update(db, id, owner, title, body).await?.ok_or(ApiError::NotFound)
}

pub async fn delete(db: &Pool, principal: &Principal, id: Uuid) -> Result<(), ApiError> {
    let owner = principal.user_id().map_err(|_| ApiError::NotFound)?;
    if db::notes::delete(db, id, owner).await? { Ok(()) } else { Err(ApiError::NotFound) }
}
