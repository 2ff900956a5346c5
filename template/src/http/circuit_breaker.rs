//! Circuit breaker for the database. While the background probe
//! (`readiness`) finds the database down, every request that needs it is
//! answered 503 with `Retry-After` at once, without touching the pool:
//! clients learn of the outage in microseconds instead of each waiting out
//! the acquire timeout, and a database that is coming back is not met by a
//! storm of connection attempts. The probe, once a second, is the trial
//! call; its first success closes the breaker.
//!
//! Every operation under `/api/` needs the database (accounts, sessions,
//! notes); the probes, the docs and the JWKS do not, and stay served.

use anyhow::anyhow;
use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::ApiError;
use crate::AppState;

/// The routes that need the database.
const NEEDS_DATABASE: &str = "/api/";

pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let needs_database = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|route| route.as_str().starts_with(NEEDS_DATABASE));
    if needs_database && state.readiness.database_down() {
        return ApiError::Unavailable(anyhow!("the database is down: answered by the circuit breaker"))
            .into_response();
    }
    next.run(request).await
}
