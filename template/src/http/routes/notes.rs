//! `/api/v1/notes`: thin handlers over `notes`; who may call them is in
//! `authz::ROUTES` (the notes scopes).

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
    notes::{self, NewNote, Note, NoteChanges},
};

/// Largest request: the longest valid note with every character escaped
/// as a surrogate pair (12 bytes) fits, nothing much bigger does.
const BODY_LIMIT: usize = 121 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// A note as its readers see it. The owner is not shown: to others it
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
    fn from(row: Note) -> Self {
        Self {
            id: row.id,
            title: row.title,
            body: row.body,
            confidential: row.confidential,
            created_at: row.created_at,
            updated_at: row.updated_at,
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
pub struct NewNoteBody {
    title: NoteTitle,
    #[serde(default)]
    body: NoteBody,
    /// Store the body encrypted at rest (the title stays searchable).
    #[serde(default)]
    confidential: bool,
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
    request_body = NewNoteBody,
    responses(
        (status = CREATED, description = "The new note", body = NoteResponse),
        (status = FORBIDDEN, description = "The token lacks notes:write, or belongs to no account", body = ErrorEnvelope),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(body): JsonBody<NewNoteBody>,
) -> Result<(StatusCode, Json<NoteResponse>), ApiError> {
    let new = NewNote { title: body.title, body: body.body, confidential: body.confidential };
    let row = notes::create(&state.db, &state.data_keys, &state.audit, &principal, &new).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
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

/// Change fields of one of the caller's notes.
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
    JsonBody(body): JsonBody<NotePatch>,
) -> Result<Json<NoteResponse>, ApiError> {
    let changes = NoteChanges { title: body.title, body: body.body, confidential: body.confidential };
    Ok(Json(notes::update(&state.db, &state.data_keys, &state.audit, &principal, id, &changes).await?.into()))
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
    notes::delete(&state.db, &state.audit, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
