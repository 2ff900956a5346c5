//! The HTTP surface: the routes, the OpenAPI document and, in one place, the
//! middleware stack every request passes through.

mod audit_context;
mod bearer;
mod body_limit;
mod circuit_breaker;
pub mod client_address;
mod error;
pub mod extract;
pub mod headers;
pub mod https_redirect;
mod load_shed;
mod openapi;
pub mod policy;
pub mod rate_limit;
pub mod request_id;
mod routes;
mod trace;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{StatusCode, header},
    middleware::{from_fn, from_fn_with_state},
};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    sensitive_headers::{SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer},
    timeout::{RequestBodyTimeoutLayer, TimeoutLayer},
};
use utoipa_axum::router::OpenApiRouter;

pub use self::{
    error::{ApiError, ErrorBody, ErrorEnvelope, ErrorReport, FieldError},
    openapi::{DOCS_PATH, SPEC_PATH},
};
use std::sync::Arc;

use crate::{AppState, config::Config};

/// Every operation of the API: each resource's router, mounted. `routes!`
/// registers a handler in the router *and* its `#[utoipa::path]` in the
/// document, so the two cannot drift; `clippy.toml` forbids `Router::route`
/// to keep this the only way in.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::document())
        .merge(routes::health::router())
        .merge(routes::auth::router())
        .merge(routes::oidc::router())
        .merge(routes::me::router())
        .merge(routes::notes::router())
        .merge(routes::admin::router())
}

/// The OpenAPI document, exactly as served at `/openapi.json`.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = api().into_openapi();
    openapi::complete(&mut document);
    document
}

/// The whole application: the API, the docs (unless `docs.expose` says
/// otherwise), the 404 fallback and the middleware stack.
pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let (api, mut document) = api().split_for_parts();
    openapi::complete(&mut document);
    // Unserved docs answer 404 like any unknown path (`docs.expose`).
    let api = if config.docs_exposed() { api.merge(openapi::routes(document)) } else { api };
    let app = api
        // Every routed request meets its route's policy first: deny by default.
        .route_layer(from_fn_with_state(state.clone(), policy::enforce))
        // Before the policy, which may need the database itself: while the
        // database is down, its routes answer 503 at once.
        .route_layer(from_fn_with_state(state.clone(), circuit_breaker::middleware))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state);
    with_middleware(app, &config)
}

/// Wraps `app` in the middleware stack. Public so that tests can wrap their
/// own probe routes (slow, panicking) in exactly the production stack.
///
/// Outermost first. Why this order: credentials are marked sensitive before
/// anything could log them; the request id exists before the span that
/// records it, and the client address is resolved inside that span so that
/// every line of the request names it, and audit events too; headers and the error renderer sit
/// above every layer that can answer on its own (CORS preflights, panics,
/// timeouts, limits), so those answers get security headers and the error
/// shape too; cheap rejections (size, concurrency) come before any handler
/// work; over the concurrency cap a request is shed at once rather than
/// queued (the probes never are); a body that stalls is cut off. The route
/// policy (rate limit, then access) runs after routing, in `router`.
pub fn with_middleware(app: Router, config: &Config) -> Router {
    let server = &config.server;
    app.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
                header::PROXY_AUTHORIZATION,
            ]))
            .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
            .layer(from_fn(request_id::middleware))
            .layer(trace::layer())
            .layer(from_fn_with_state(Arc::new(server.clone()), client_address::middleware))
            .layer(from_fn(audit_context::middleware))
            .layer(headers::security_headers())
            .layer(headers::cors(&config.cors))
            .layer(from_fn(error::render))
            .layer(CatchPanicLayer::custom(error::panic_response))
            .layer(from_fn_with_state(
                load_shed::Cap::new(server.max_concurrent_requests),
                load_shed::middleware,
            ))
            .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, server.request_timeout))
            .layer(from_fn_with_state(
                (server.body_limit_bytes, server.body_idle_timeout),
                body_limit::refuse_oversize,
            ))
            .layer(RequestBodyTimeoutLayer::new(server.body_idle_timeout))
            .layer(RequestBodyLimitLayer::new(server.body_limit_bytes))
            .layer(DefaultBodyLimit::max(server.body_limit_bytes)),
    )
}
