//! `/api/v1/admin/*`: account administration, thin handlers over `admin`.
//! Who may call them is in `authz::ROUTES` (the admin role).

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::auth::UserResponse;
use crate::{
    AppState,
    admin::{self, AdminView},
    authz::Role,
    domain::PageQuery,
    http::{
        ApiError, ErrorEnvelope,
        extract::{IdPath, JsonBody, ValidQuery},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(set_roles))
        .routes(routes!(disable_user))
        .routes(routes!(unlock_user))
}

#[derive(Serialize, ToSchema)]
pub struct AdminUserResponse {
    #[serde(flatten)]
    pub user: UserResponse,
    pub disabled: bool,
}

impl From<AdminView> for AdminUserResponse {
    fn from(view: AdminView) -> Self {
        Self { user: view.account.into(), disabled: view.disabled }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<AdminUserResponse>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<Uuid>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    /// The roles the account should hold; `user` is always kept.
    roles: Vec<Role>,
}

/// List all accounts.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users",
    tag = "admin",
    params(PageQuery),
    responses(
        (status = OK, description = "A page of accounts", body = UserPage),
    ),
)]
pub async fn list_users(
    State(state): State<AppState>,
    ValidQuery(query): ValidQuery<PageQuery>,
) -> Result<Json<UserPage>, ApiError> {
    let page = admin::accounts(&state.db, &query).await?;
    Ok(Json(UserPage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_after: page.next_after,
    }))
}

/// Set an account's roles; in effect at once, even on tokens already issued.
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{id}/roles",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The account's id")),
    request_body = RolesRequest,
    responses(
        (status = OK, description = "The account with its new roles", body = AdminUserResponse),
        (status = NOT_FOUND, description = "No such account", body = ErrorEnvelope),
        (status = CONFLICT, description = "It would leave no active admin", body = ErrorEnvelope),
    ),
)]
pub async fn set_roles(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    JsonBody(request): JsonBody<RolesRequest>,
) -> Result<Json<AdminUserResponse>, ApiError> {
    Ok(Json(admin::set_roles(&state.db, id, &request.roles).await?.into()))
}

/// Disable an account; its sessions and tokens stop working at once.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/disable",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The account's id")),
    responses(
        (status = NO_CONTENT, description = "Disabled"),
        (status = NOT_FOUND, description = "No such account", body = ErrorEnvelope),
        (status = CONFLICT, description = "It is the last active admin", body = ErrorEnvelope),
    ),
)]
pub async fn disable_user(State(state): State<AppState>, IdPath(id): IdPath) -> Result<StatusCode, ApiError> {
    admin::disable(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lift the login throttle of an account.
///
/// Logins are throttled per client address, with a ceiling per account
/// that many addresses together can reach; this clears both at once.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/unlock",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The account's id")),
    responses(
        (status = NO_CONTENT, description = "Every throttle of the account is lifted"),
        (status = NOT_FOUND, description = "No such account", body = ErrorEnvelope),
    ),
)]
pub async fn unlock_user(State(state): State<AppState>, IdPath(id): IdPath) -> Result<StatusCode, ApiError> {
    admin::unlock(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
