//! The route policy table (`authz::ROUTES`), applied to every routed
//! request before its handler and extractors run: its rate limit, then who
//! may call it. Deny by default.

use axum::{
    extract::{FromRequestParts, MatchedPath, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{ApiError, client_address::ClientAddr, rate_limit::RouteLimit};
use crate::{
    AppState,
    audit::{Actor, Event, Outcome},
    auth::Principal,
    authz::{self, Access, RoutePolicy},
    rate_limit::{Class, Key},
};

/// A method the table does not list for a path answers 405 (the table is
/// the list of what is allowed); a path without any row is refused,
/// whoever calls. Otherwise the request is charged to its rate limit (429
/// over it), and, unless the route is public, the caller must
/// authenticate (401), be allowed (403), and, for most routes, have proven
/// its address. The verified principal stays with the request, for the
/// handler to take; every answer tells the rate limit's state, and every
/// refusal is counted into the audit trail (aggregated: `audit`).
pub async fn enforce(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
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
    let limit = RouteLimit::new(state.rate_limits.clone(), state.audit.clone(), policy.limit);
    request.extensions_mut().insert(limit.clone());
    let mut response = match admit(&state, policy, &limit, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    };
    limit.describe(response.headers_mut());
    response
}

async fn admit(
    state: &AppState,
    policy: &RoutePolicy,
    limit: &RouteLimit,
    request: Request,
) -> Result<Request, ApiError> {
    let ClientAddr(client) = request
        .extensions()
        .get::<ClientAddr>()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no client address resolved"))?;
    // Per-principal limits wait for the principal; every other class
    // counts the address first, before any work is done.
    if policy.limit != Class::Authenticated {
        limit.charge(Key::Address(client)).await?;
    }
    if policy.access == Access::Public {
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    let route = || format!("{} {}", policy.method, policy.path);
    let principal = match Principal::from_request_parts(&mut parts, state).await {
        Ok(principal) => principal,
        Err(rejection) => {
            // Guessing tokens costs the guesser's address its anonymous quota.
            if policy.limit == Class::Authenticated {
                limit.charge_as(Class::Anonymous, Key::Address(client)).await?;
            }
            let rejected = Event::new("auth.token.rejected", Outcome::Denied).target("route", route());
            state.audit.record_flood(rejected);
            return Err(rejection);
        }
    };
    limit.charge_subject(&principal.subject).await?;
    let denied = || {
        Event::new("access.denied", Outcome::Denied)
            .actor(Actor::principal(&principal))
            .target("route", route())
    };
    if !policy.access.allows(&principal) {
        state.audit.record_flood(denied().detail("reason", "not_allowed"));
        return Err(ApiError::Forbidden);
    }
    let unproven = state.config.auth.require_verified_email && !principal.email_verified;
    if unproven && !policy.before_verification {
        state.audit.record_flood(denied().detail("reason", "email_not_verified"));
        return Err(ApiError::EmailNotVerified);
    }
    Ok(Request::from_parts(parts, body))
}
