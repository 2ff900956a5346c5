//! `/api/v1/admin/*`: account administration, thin handlers over `admin`.
//! Who may call them is in `authz::ROUTES` (the admin role).

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::auth::UserResponse;
use crate::{
    AppState,
    admin::{self, AdminView},
    audit::{self, Actor, Outcome},
    auth::Principal,
    authz::Role,
    db::audit::AuditRow,
    domain::{FilterText, PageLimit, PageQuery},
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
        .routes(routes!(audit_events))
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
    principal: Principal,
    IdPath(id): IdPath,
    JsonBody(request): JsonBody<RolesRequest>,
) -> Result<Json<AdminUserResponse>, ApiError> {
    Ok(Json(admin::set_roles(&state.db, Actor::principal(&principal), id, &request.roles).await?.into()))
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
pub async fn disable_user(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    admin::disable(&state.db, Actor::principal(&principal), id).await?;
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
pub async fn unlock_user(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    admin::unlock(&state.db, Actor::principal(&principal), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A query of the audit trail; every filter is optional.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Events by this actor: an account id or a provider subject.
    #[serde(default)]
    #[param(inline)]
    actor: Option<FilterText>,
    /// Events of this name, e.g. `auth.login.failed`.
    #[serde(default)]
    #[param(inline)]
    event: Option<FilterText>,
    #[serde(default)]
    #[param(inline)]
    outcome: Option<Outcome>,
    /// Events about this target: an account id, a route, …
    #[serde(default)]
    #[param(inline)]
    target: Option<FilterText>,
    /// Events at or after this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<OffsetDateTime>,
    /// Events before this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<OffsetDateTime>,
    #[serde(default)]
    #[param(inline)]
    limit: Option<PageLimit>,
    /// The `next_before` of the previous page.
    #[serde(default)]
    before: Option<i64>,
}

/// One audit event. The README documents each name and field.
#[derive(Serialize, ToSchema)]
pub struct AuditEventResponse {
    /// Its place in the hash chain.
    pub seq: i64,
    /// RFC 3339, UTC.
    #[schema(example = "2026-11-29T10:00:00.000000Z")]
    pub occurred_at: String,
    #[schema(example = "auth.login.failed")]
    pub event: String,
    #[schema(example = "failure")]
    pub outcome: String,
    pub actor: AuditActor,
    /// The client address, as resolved behind trusted proxies.
    pub source: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub target: Option<AuditTarget>,
    /// Small facts: a reason class, roles, a count; never a secret.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// How many occurrences this row stands for (floods are aggregated).
    pub count: i64,
    /// SHA-256 over the previous row's hash and this row's content.
    pub hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuditActor {
    /// `account`, `subject`, `anonymous` or `system`.
    pub kind: String,
    pub id: Option<String>,
    pub client: Option<String>,
    pub method: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditTarget {
    pub kind: String,
    pub id: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEventResponse>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next_before: Option<i64>,
}

impl From<AuditRow> for AuditEventResponse {
    fn from(row: AuditRow) -> Self {
        Self {
            seq: row.seq,
            occurred_at: row.occurred_at,
            event: row.name,
            outcome: row.outcome,
            actor: AuditActor {
                kind: row.actor_kind,
                id: row.actor_id,
                client: row.actor_client,
                method: row.actor_method,
            },
            source: row.source,
            user_agent: row.user_agent,
            request_id: row.request_id,
            target: row.target_kind.zip(row.target_id).map(|(kind, id)| AuditTarget { kind, id }),
            details: serde_json::from_str(&row.details).unwrap_or_default(),
            count: row.count,
            hash: row.hash,
        }
    }
}

/// Query the audit trail, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit",
    tag = "admin",
    params(AuditQuery),
    responses(
        (status = OK, description = "A page of audit events, newest first", body = AuditPage),
    ),
)]
pub async fn audit_events(
    State(state): State<AppState>,
    ValidQuery(query): ValidQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let query = audit::Query {
        actor: query.actor.map(FilterText::into_inner),
        event: query.event.map(FilterText::into_inner),
        outcome: query.outcome,
        target: query.target.map(FilterText::into_inner),
        since: query.since,
        until: query.until,
        before: query.before,
        limit: query.limit.unwrap_or_default().get(),
    };
    let page = audit::query(&state.db, &query).await?;
    Ok(Json(AuditPage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_before: page.next_after,
    }))
}
