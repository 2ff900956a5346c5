//! Probes for the orchestrator: liveness and readiness.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState, db,
    http::{ApiError, ErrorEnvelope},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

const OK: Health = Health { status: "ok" };

/// The probes' routes: never shed, whatever the load (see `load_shed`).
pub const PROBES: [&str; 2] = ["/healthz", "/readyz"];

/// Liveness probe.
///
/// Answers while the process serves requests. It touches no dependency, so an
/// outage of the database never gets healthy instances restarted.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = OK, description = "The process is alive", body = Health)),
)]
pub async fn healthz() -> Json<Health> {
    Json(OK)
}

/// Readiness probe.
///
/// Answers 200 when the service can do useful work, i.e. the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = OK, description = "Ready for traffic", body = Health),
        (status = SERVICE_UNAVAILABLE, description = "The database is unreachable", body = ErrorEnvelope),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    db::ping(&state.db).await.map_err(|err| ApiError::Unavailable(err.into()))?;
    Ok(Json(OK))
}
