//! Authentication by bearer token: `Authorization: Bearer <token>` becomes
//! the request's `Principal`, verified once however many ask.

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};

use super::ApiError;
use crate::{
    AppState,
    auth::{self, Principal},
};

/// Taking a `Principal` makes a handler's caller known; the route policy
/// (`http::policy`) has verified it before the handler runs.
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Self>() {
            return Ok(principal.clone());
        }
        let token = bearer_token(parts)?;
        let principal = auth::authenticate(&state.auth, &state.db, token).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive,
/// RFC 6750). No header is 401 without an error code; a malformed one is an
/// invalid token.
fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthenticated);
    };
    let value = value.to_str().map_err(|_| ApiError::InvalidToken)?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim())
        }
        _ => Err(ApiError::InvalidToken),
    }
}
