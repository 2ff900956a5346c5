//! `/api/v1/me`: who the caller is.

use axum::{
    Json,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Accepted, MAIL_ON_ITS_WAY, UserResponse};
use crate::{
    AppState,
    auth::{
        AuthMethod, Principal, Subject, accounts,
        verification::{self, EmailChange},
    },
    authz::Role,
    domain::{Email, Password},
    http::{ApiError, ErrorEnvelope, client_address::ClientAddr, extract::JsonBody},
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(change_email))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Largest body: a password and an address.
const BODY_LIMIT: usize = 8 * 1024;

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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeRequest {
    current_password: Password,
    new_email: Email,
}

/// Move the caller's account to another email address.
///
/// The new address gets a link; it replaces the old one only once that link
/// is followed (`POST /api/v1/auth/verify-email`), and the old address is
/// told. The answer is the same whether or not another account has the new
/// address.
#[utoipa::path(
    post,
    path = "/api/v1/me/email",
    tag = "account",
    request_body = EmailChangeRequest,
    responses(
        (status = ACCEPTED, description = "A link is on its way to the new address", body = Accepted),
        (status = UNPROCESSABLE_ENTITY, description = "Wrong current password", body = ErrorEnvelope),
        (status = SERVICE_UNAVAILABLE, description = "Too many password checks at once; retry shortly", body = ErrorEnvelope),
    ),
)]
pub async fn change_email(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(client): ClientAddr,
    JsonBody(request): JsonBody<EmailChangeRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let user_id = principal.user_id()?;
    verification::change_email(
        &state.db,
        &state.auth,
        &state.audit,
        &state.mail,
        user_id,
        client,
        EmailChange { current_password: &request.current_password, new_email: &request.new_email },
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(MAIL_ON_ITS_WAY)))
}
