//! Probes for the orchestrator: liveness and readiness.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    http::{ApiError, ErrorEnvelope},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` while a dependency the service works around is down.
    #[schema(example = "ok")]
    status: &'static str,
    /// The dependencies that are down without stopping the service.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    degraded: Vec<&'static str>,
}

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
    Json(Health { status: "ok", degraded: Vec::new() })
}

/// Readiness probe.
///
/// Answers at once from the last background probes (see `readiness`): 200
/// while the service can do its work, 503 naming what stops it (the
/// database; Redis when limits are refused without it; shutting down). A
/// dependency the service works around (Redis with limits counted in
/// memory meanwhile; mail, which waits in the outbox) is listed as
/// `degraded`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = OK, description = "Ready for traffic", body = Health),
        (status = SERVICE_UNAVAILABLE, description = "Not ready: the message names what is down", body = ErrorEnvelope),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let status = state.readiness.status();
    if !status.blocking.is_empty() {
        return Err(ApiError::NotReady(status.blocking));
    }
    let health = if status.degraded.is_empty() { "ok" } else { "degraded" };
    Ok(Json(Health { status: health, degraded: status.degraded }))
}
