//! `/api/v1/notes`: the example resource, owned by users. Thin handlers
//! over `notes`; who may call them is in `authz::ROUTES` (the notes scopes).

use axum::{Json, extract::DefaultBodyLimit, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState,
    auth::Principal,
    domain::{NoteBody, NoteTitle, PageQuery},
    http::{
        ApiError, ErrorEnvelope,
        extract::{IdPath, JsonBody, ValidQuery},
    },
    notes::{self, Note, NoteChanges},
};

/// Largest note request. A note of the longest title and body the schema
/// allows is at most about 26 KiB even when every character is escaped as a
/// surrogate pair (12 bytes), so 32 KiB always fits a valid note, tighter
/// than the global limit.
const BODY_LIMIT: usize = 32 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// A note as its reader sees it. The owner is not shown: to an admin it
/// would be another user's internal id.
#[derive(Serialize, ToSchema)]
pub struct NoteResponse {
    pub id: Uuid,
    pub title: String,
    pub body: String,
    /// Whether the body is stored encrypted; it is shown in the clear to
    /// its readers all the same.
    pub confidential: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl From<Note> for NoteResponse {
    fn from(note: Note) -> Self {
        Self {
            id: note.id,
            title: note.title,
            body: note.body,
            confidential: note.confidential,
            created_at: note.created_at,
            updated_at: note.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NotePage {
    pub items: Vec<NoteResponse>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<Uuid>,
}

/// Only these fields can be set: not `id`, not the owner, not timestamps.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    title: NoteTitle,
    #[serde(default = "empty_body")]
    body: NoteBody,
    /// Store the body encrypted at rest (the title stays searchable).
    #[serde(default)]
    confidential: bool,
}

fn empty_body() -> NoteBody {
    NoteBody::try_from(String::new()).unwrap_or_else(|_| unreachable!("an empty body is valid"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotePatch {
    #[serde(default)]
    title: Option<NoteTitle>,
    #[serde(default)]
    body: Option<NoteBody>,
    #[serde(default)]
    confidential: Option<bool>,
}

/// List the caller's notes, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/notes",
    tag = "notes",
    params(PageQuery),
    responses(
        (status = OK, description = "A page of the caller's notes", body = NotePage),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ValidQuery(query): ValidQuery<PageQuery>,
) -> Result<Json<NotePage>, ApiError> {
    let page = notes::page(&state.db, &state.data_keys, &principal, &query).await?;
    Ok(Json(NotePage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_after: page.next_after,
    }))
}

/// Create a note owned by the caller.
#[utoipa::path(
    post,
    path = "/api/v1/notes",
    tag = "notes",
    request_body = NewNote,
    responses(
        (status = CREATED, description = "The new note", body = NoteResponse),
        (status = FORBIDDEN, description = "The token lacks notes:write, or belongs to no account", body = ErrorEnvelope),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(note): JsonBody<NewNote>,
) -> Result<(StatusCode, Json<NoteResponse>), ApiError> {
    let note =
        notes::create(&state.db, &state.data_keys, &principal, &note.title, &note.body, note.confidential)
            .await?;
    Ok((StatusCode::CREATED, Json(note.into())))
}

/// Read a note: the caller's own, or any note for an admin.
#[utoipa::path(
    get,
    path = "/api/v1/notes/{id}",
    tag = "notes",
    params(("id" = Uuid, Path, description = "The note's id")),
    responses(
        (status = OK, description = "The note", body = NoteResponse),
        (status = NOT_FOUND, description = "No such note, or not the caller's", body = ErrorEnvelope),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<Json<NoteResponse>, ApiError> {
    Ok(Json(notes::get(&state.db, &state.data_keys, &principal, id).await?.into()))
}

/// Change the title, body or confidentiality of one of the caller's notes.
#[utoipa::path(
    patch,
    path = "/api/v1/notes/{id}",
    tag = "notes",
    params(("id" = Uuid, Path, description = "The note's id")),
    request_body = NotePatch,
    responses(
        (status = OK, description = "The changed note", body = NoteResponse),
        (status = NOT_FOUND, description = "No such note, or not the caller's", body = ErrorEnvelope),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
    JsonBody(patch): JsonBody<NotePatch>,
) -> Result<Json<NoteResponse>, ApiError> {
    let changes = NoteChanges {
        title: patch.title.as_ref(),
        body: patch.body.as_ref(),
        confidential: patch.confidential,
    };
    let note = notes::update(&state.db, &state.data_keys, &principal, id, &changes).await?;
    Ok(Json(note.into()))
}

/// Delete one of the caller's notes.
#[utoipa::path(
    delete,
    path = "/api/v1/notes/{id}",
    tag = "notes",
    params(("id" = Uuid, Path, description = "The note's id")),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = NOT_FOUND, description = "No such note, or not the caller's", body = ErrorEnvelope),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    notes::delete(&state.db, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
