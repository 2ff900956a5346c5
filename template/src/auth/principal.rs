//! The authenticated caller, extracted from `Authorization: Bearer <token>`.

use axum::{extract::FromRequestParts, http::header, http::request::Parts};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{AppState, authz::Role, http::ApiError};

/// How the caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Email and password, at this service.
    Password,
    /// Signed in at an OpenID Connect provider.
    Oidc,
}

impl AuthMethod {
    /// The stored name, also used in refresh-token rows.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Oidc => "oidc",
        }
    }

    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "password" => Some(Self::Password),
            "oidc" => Some(Self::Oidc),
            _ => None,
        }
    }

    /// The RFC 8176 `amr` value in access tokens.
    #[must_use]
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::Oidc => "fed",
        }
    }

    fn from_amr(amr: &[String]) -> Option<Self> {
        match amr.first().map(String::as_str) {
            Some("pwd") => Some(Self::Password),
            Some("fed") => Some(Self::Oidc),
            _ => None,
        }
    }
}

/// A caller whose access token checked out. Taking it as a handler argument
/// makes the route require authentication: without a token the request is
/// answered 401 before the handler runs.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: Uuid,
    pub roles: Vec<Role>,
    pub scopes: Vec<String>,
    pub method: AuthMethod,
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Self>() {
            return Ok(principal.clone());
        }
        let token = bearer_token(parts)?;
        let claims = state.auth.tokens.verify(token).map_err(|rejection| {
            tracing::info!(reason = %rejection, "access token refused");
            ApiError::InvalidToken
        })?;
        let principal = Self {
            user_id: claims.sub.parse().map_err(|_| ApiError::InvalidToken)?,
            roles: claims.roles.iter().filter_map(|name| Role::parse(name)).collect(),
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
            method: AuthMethod::from_amr(&claims.amr).ok_or(ApiError::InvalidToken)?,
        };
        // Verified once per request, however many extractors ask.
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
