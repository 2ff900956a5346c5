//! The authenticated caller, extracted from `Authorization: Bearer <token>`.

use axum::{extract::FromRequestParts, http::header, http::request::Parts};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{AppState, authz::Role, db, http::ApiError};

/// How the caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Email and password, at this service.
    Password,
    /// Logged in at the OpenID Connect provider, then got this service's
    /// own tokens.
    Oidc,
    /// An access token the provider issued to a user for this API.
    ProviderToken,
    /// An access token the provider issued to a service (client credentials).
    ClientCredentials,
}

impl AuthMethod {
    /// The stored name, also used in refresh-token rows.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Oidc => "oidc",
            Self::ProviderToken => "provider_token",
            Self::ClientCredentials => "client_credentials",
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

    /// The RFC 8176 `amr` value in this service's access tokens.
    #[must_use]
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::Oidc | Self::ProviderToken | Self::ClientCredentials => "fed",
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

/// Who is behind a principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// An account of this service.
    User(Uuid),
    /// A provider identity without an account here: a service using client
    /// credentials, or a provider user who never logged in here.
    External(String),
}

/// A caller whose access token checked out. Taking it as a handler argument
/// makes the route require authentication: without a token the request is
/// answered 401 before the handler runs.
#[derive(Clone, Debug)]
pub struct Principal {
    pub subject: Subject,
    pub roles: Vec<Role>,
    pub scopes: Vec<String>,
    pub method: AuthMethod,
}

impl Principal {
    /// The caller's account, for operations that need one; services and
    /// unlinked provider users are refused (403).
    pub fn user_id(&self) -> Result<Uuid, ApiError> {
        match self.subject {
            Subject::User(id) => Ok(id),
            Subject::External(_) => Err(ApiError::Forbidden),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Self>() {
            return Ok(principal.clone());
        }
        let token = bearer_token(parts)?;
        let auth = &state.auth;
        let principal = match &auth.oidc {
            Some(oidc) if !auth.tokens.is_ours(token) => {
                oidc.principal(&state.db, token).await.map_err(|err| {
                    tracing::info!(reason = format!("{err:#}"), "provider access token refused");
                    ApiError::InvalidToken
                })?
            }
            _ => {
                let claims = auth.tokens.verify(token).map_err(|rejection| {
                    tracing::info!(reason = %rejection, "access token refused");
                    ApiError::InvalidToken
                })?;
                let user_id = claims.sub.parse().map_err(|_| ApiError::InvalidToken)?;
                // One indexed lookup per request buys immediate effect for
                // disabling an account, which a stateless token cannot give.
                if !db::users::is_active(&state.db, user_id).await? {
                    tracing::info!(%user_id, "access token of a disabled or deleted account refused");
                    return Err(ApiError::InvalidToken);
                }
                Self {
                    subject: Subject::User(user_id),
                    roles: claims.roles.iter().filter_map(|name| Role::parse(name)).collect(),
                    scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
                    method: AuthMethod::from_amr(&claims.amr).ok_or(ApiError::InvalidToken)?,
                }
            }
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
