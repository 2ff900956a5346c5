//! The route policy table (`authz::ROUTES`), applied to every routed
//! request before its handler and extractors run: deny by default.

use axum::{
    extract::{FromRequestParts, MatchedPath, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::ApiError;
use crate::{
    AppState,
    auth::Principal,
    authz::{self, Access},
};

/// A method the table does not list for a path answers 405 (the table is
/// the list of what is allowed); a path without any row is refused,
/// whoever calls; otherwise the caller must authenticate (401), be allowed
/// (403), and, for most routes, have proven its address. The verified
/// principal stays with the request, for the handler to take.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or_default();
    let Some(policy) = authz::policy(request.method().as_str(), path) else {
        let allowed: Vec<&str> =
            authz::ROUTES.iter().filter(|row| row.path == path).map(|row| row.method).collect();
        if allowed.is_empty() {
            tracing::error!(route = path, "route without an access policy: refused");
            return ApiError::Forbidden.into_response();
        }
        let allow =
            HeaderValue::from_str(&allowed.join(",")).unwrap_or_else(|_| HeaderValue::from_static(""));
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, allow)]).into_response();
    };
    if policy.access == Access::Public {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let principal = match Principal::from_request_parts(&mut parts, &state).await {
        Ok(principal) => principal,
        Err(rejection) => return rejection.into_response(),
    };
    if !policy.access.allows(&principal) {
        return ApiError::Forbidden.into_response();
    }
    let unproven = state.config.auth.require_verified_email && !principal.email_verified;
    if unproven && !policy.before_verification {
        return ApiError::EmailNotVerified.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}
