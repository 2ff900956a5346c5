//! `/api/v1/me`: the caller's own account.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::UserResponse;
use crate::{
    AppState,
    auth::{AuthMethod, Principal, accounts},
    http::{ApiError, ErrorEnvelope},
};

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    #[serde(flatten)]
    pub user: UserResponse,
    /// The scopes of the presented access token.
    pub scopes: Vec<String>,
    /// How the caller authenticated to get the presented token.
    pub auth_method: AuthMethod,
}

/// The caller's profile, roles and how they authenticated.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = OK, description = "The caller's account", body = MeResponse),
        (status = UNAUTHORIZED, description = "No valid access token", body = ErrorEnvelope),
    ),
)]
pub async fn me(State(state): State<AppState>, principal: Principal) -> Result<Json<MeResponse>, ApiError> {
    let account = accounts::profile(&state.db, principal.user_id).await?;
    Ok(Json(MeResponse { user: account.into(), scopes: principal.scopes, auth_method: principal.method }))
}
