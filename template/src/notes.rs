//! Notes, the example resource: the object-level rules (see
//! `authz::can_read_note`) applied to each note. A note the caller may not
//! see is reported exactly like a missing one, so ids cannot be probed.

use uuid::Uuid;

use crate::{
    auth::{NoAccount, Principal},
    authz,
    db::{self, Pool, notes::NoteRow},
    domain::{NoteBody, NoteTitle, Page, PageQuery},
};

/// Why a note operation failed, in this service's terms.
#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    /// No such note, or one the caller may not see or change.
    #[error("no such note")]
    NotFound,
    #[error(transparent)]
    NoAccount(#[from] NoAccount),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A page of the caller's own notes; admins too see only their own here.
pub async fn page(db: &Pool, principal: &Principal, query: &PageQuery) -> Result<Page<NoteRow>, NotesError> {
    let notes =
        db::notes::page_of_owner(db, principal.user_id()?, query.after, query.rows_to_fetch()).await?;
    Ok(query.page(notes, |note| note.id))
}

pub async fn create(
    db: &Pool,
    principal: &Principal,
    title: &NoteTitle,
    body: &NoteBody,
) -> Result<NoteRow, NotesError> {
    Ok(db::notes::insert(db, principal.user_id()?, title, body).await?)
}

pub async fn get(db: &Pool, principal: &Principal, id: Uuid) -> Result<NoteRow, NotesError> {
    let note = db::notes::find(db, id).await?.ok_or(NotesError::NotFound)?;
    if authz::can_read_note(principal, note.owner_id) { Ok(note) } else { Err(NotesError::NotFound) }
}

/// Changes the given fields of one of the caller's notes. Callers without
/// an account own no note, so for them every note is missing.
pub async fn update(
    db: &Pool,
    principal: &Principal,
    id: Uuid,
    title: Option<&NoteTitle>,
    body: Option<&NoteBody>,
) -> Result<NoteRow, NotesError> {
    let owner = principal.user_id().map_err(|_| NotesError::NotFound)?;
    db::notes::update(db, id, owner, title, body).await?.ok_or(NotesError::NotFound)
}

pub async fn delete(db: &Pool, principal: &Principal, id: Uuid) -> Result<(), NotesError> {
    let owner = principal.user_id().map_err(|_| NotesError::NotFound)?;
    if db::notes::delete(db, id, owner).await? { Ok(()) } else { Err(NotesError::NotFound) }
}
