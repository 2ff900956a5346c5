//! `/api/v1/me`: who the caller is.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::UserResponse;
use crate::{
    AppState,
    auth::{AuthMethod, Principal, Subject, accounts},
    authz::Role,
    http::ApiError,
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    /// The account id, or the provider's subject for callers without an
    /// account here (services using client credentials).
    pub subject: String,
    /// How the caller authenticated to get the presented token.
    pub auth_method: AuthMethod,
    /// The roles and scopes the presented token grants.
    pub roles: Vec<Role>,
    pub scopes: Vec<String>,
    /// The caller's account; `null` for callers without one.
    pub account: Option<UserResponse>,
}

/// Who the caller is: their account, roles and scopes, and how they
/// authenticated.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "account",
    responses(
        (status = OK, description = "The caller", body = MeResponse),
    ),
)]
pub async fn me(State(state): State<AppState>, principal: Principal) -> Result<Json<MeResponse>, ApiError> {
    let (subject, account) = match principal.subject {
        Subject::User(id) => (id.to_string(), Some(accounts::profile(&state.db, id).await?.into())),
        Subject::External(subject) => (subject, None),
    };
    Ok(Json(MeResponse {
        subject,
        auth_method: principal.method,
        roles: principal.roles,
        scopes: principal.scopes,
        account,
    }))
}
