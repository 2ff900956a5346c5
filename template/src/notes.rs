//! Notes: the object rules applied to each note. Owners read their notes,
//! admins everyone's (`authz::can_read_owned`); only the owner changes or
//! deletes one. A note the caller may not see answers exactly like a
//! missing one, so ids cannot be probed. Every change is recorded in the
//! audit trail. The body of a confidential note is sealed before it
//! reaches the database and opened only for a reader (see `encryption`).

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    audit::{Actor, Auditor, Event, Outcome},
    auth::{NoAccount, Principal},
    authz,
    db::{
        self, Pool,
        notes::{NoteRow, StoredNote},
    },
    domain::{NoteBody, NoteTitle, Page, PageQuery},
    encryption::{self, DataKeys, EncryptionError, Field},
};

/// Where confidential bodies are stored: bound into each ciphertext.
const BODY: Field = Field { table: "notes", column: "body" };

/// How often an update reads again when another write changed the note
/// between its read and its write.
const UPDATE_ATTEMPTS: usize = 3;

/// A note as its owner sees it: the body in the clear.
#[derive(Clone, Debug)]
pub struct Note {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    pub body: String,
    pub confidential: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The fields a new note is given, each parsed already.
pub struct NewNote {
    pub title: NoteTitle,
    pub body: NoteBody,
    pub confidential: bool,
}

/// The fields a change sets; `None` keeps the note's own.
#[derive(Default)]
pub struct NoteChanges {
    pub title: Option<NoteTitle>,
    pub body: Option<NoteBody>,
    pub confidential: Option<bool>,
}

/// Why a note operation failed, in this service's terms.
#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    /// No such note, or one the caller may not see or change.
    #[error("no such note")]
    NotFound,
    /// Other writes kept changing the note while this one was made.
    #[error("the note kept changing")]
    Contended,
    #[error(transparent)]
    NoAccount(#[from] NoAccount),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Encryption(#[from] EncryptionError),
}

/// A page of the caller's own notes; admins too see only their own here.
pub async fn page(
    db: &Pool,
    keys: &DataKeys,
    principal: &Principal,
    query: &PageQuery,
) -> Result<Page<Note>, NotesError> {
    let rows = db::notes::page_of_owner(db, principal.user_id()?, query.after, query.rows_to_fetch()).await?;
    let notes = rows.into_iter().map(|row| open(keys, row)).collect::<Result<Vec<_>, _>>()?;
    Ok(query.page(notes, |note| note.id))
}

pub async fn create(
    db: &Pool,
    keys: &DataKeys,
    audit: &Auditor,
    principal: &Principal,
    new: &NewNote,
) -> Result<Note, NotesError> {
    let owner = principal.user_id()?;
    let id = Uuid::now_v7();
    let body = stored_body(keys, id, new.body.as_str(), new.confidential)?;
    let stored = StoredNote { title: new.title.as_str(), body: &body, confidential: new.confidential };
    let note = open(keys, db::notes::insert(db, id, owner, &stored).await?)?;
    audit.record(changed("notes.created", principal, note.id));
    Ok(note)
}

pub async fn get(db: &Pool, keys: &DataKeys, principal: &Principal, id: Uuid) -> Result<Note, NotesError> {
    let row = db::notes::find(db, id).await?.ok_or(NotesError::NotFound)?;
    if authz::can_read_owned(principal, row.owner_id) { open(keys, row) } else { Err(NotesError::NotFound) }
}

/// Changes the given fields of one of the caller's notes. Callers without an
/// account own none, so for them every note is missing. The body is sealed
/// anew on every change, so a changed note is always under the current key;
/// a write between this one's read and its write makes it read again.
pub async fn update(
    db: &Pool,
    keys: &DataKeys,
    audit: &Auditor,
    principal: &Principal,
    id: Uuid,
    changes: &NoteChanges,
) -> Result<Note, NotesError> {
    let owner = principal.user_id().map_err(|_| NotesError::NotFound)?;
    for _ in 0..UPDATE_ATTEMPTS {
        let stored = db::notes::find(db, id).await?.filter(|note| note.owner_id == owner);
        let stored = stored.ok_or(NotesError::NotFound)?;
        let current = open(keys, stored.clone())?;
        let confidential = changes.confidential.unwrap_or(current.confidential);
        let body = changes.body.as_ref().map_or(current.body.as_str(), NoteBody::as_str);
        let body = stored_body(keys, id, body, confidential)?;
        let title = changes.title.as_ref().map_or(current.title.as_str(), NoteTitle::as_str);
        let note = StoredNote { title, body: &body, confidential };
        if let Some(row) = db::notes::replace(db, id, owner, &stored.body, &note).await? {
            audit.record(changed("notes.updated", principal, id));
            return open(keys, row);
        }
    }
    Err(NotesError::Contended)
}

pub async fn delete(db: &Pool, audit: &Auditor, principal: &Principal, id: Uuid) -> Result<(), NotesError> {
    let owner = principal.user_id().map_err(|_| NotesError::NotFound)?;
    if !db::notes::delete(db, id, owner).await? {
        return Err(NotesError::NotFound);
    }
    audit.record(changed("notes.deleted", principal, id));
    Ok(())
}

/// The audit event of a change: who, what, which note; never its content.
fn changed(name: &'static str, principal: &Principal, id: Uuid) -> Event {
    Event::new(name, Outcome::Success).actor(Actor::principal(principal)).target("note", id.to_string())
}

/// Re-encrypts every confidential body not yet under the current key,
/// `batch` notes at a time; returns how many (see `encryption::reseal_all`).
pub async fn reseal_all(db: &Pool, keys: &DataKeys, batch: u32) -> Result<u64, NotesError> {
    encryption::reseal_all(
        keys,
        BODY,
        batch,
        async |prefix, limit| Ok(db::notes::sealed_otherwise(db, prefix, limit).await?),
        async |id, read, body| Ok(db::notes::reseal_body(db, *id, read, body).await?),
    )
    .await
}

fn stored_body(keys: &DataKeys, id: Uuid, body: &str, confidential: bool) -> Result<String, EncryptionError> {
    if confidential { keys.seal(BODY, id.as_bytes(), body) } else { Ok(body.to_owned()) }
}

fn open(keys: &DataKeys, row: NoteRow) -> Result<Note, NotesError> {
    let body = if row.confidential { keys.open(BODY, row.id.as_bytes(), &row.body)? } else { row.body };
    Ok(Note {
        id: row.id,
        owner_id: row.owner_id,
        title: row.title,
        body,
        confidential: row.confidential,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
