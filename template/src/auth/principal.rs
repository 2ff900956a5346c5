//! The authenticated caller, extracted from `Authorization: Bearer <token>`.

use axum::{extract::FromRequestParts, http::header, http::request::Parts};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    AppState,
    authz::{self, Role},
    db::{self, Pool},
    http::ApiError,
};

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
                let caller = oidc.verify_access_token(&state.db, token).await.map_err(|err| {
                    tracing::info!(reason = format!("{err:#}"), "provider access token refused");
                    ApiError::InvalidToken
                })?;
                match caller.account {
                    Some(user_id) => {
                        // The provider's token is the provider's to revoke;
                        // here the account must be active, with its roles.
                        let granted = Granted { session: None, roles: caller.roles, scopes: caller.scopes };
                        for_account(&state.db, user_id, granted, AuthMethod::ProviderToken).await?
                    }
                    None => Self {
                        subject: Subject::External(caller.subject),
                        roles: caller.roles,
                        scopes: caller.scopes,
                        method: if caller.client_credentials {
                            AuthMethod::ClientCredentials
                        } else {
                            AuthMethod::ProviderToken
                        },
                    },
                }
            }
            _ => {
                let claims = auth.tokens.verify(token).map_err(|rejection| {
                    tracing::info!(reason = %rejection, "access token refused");
                    ApiError::InvalidToken
                })?;
                let user_id = claims.sub.parse().map_err(|_| ApiError::InvalidToken)?;
                let session = claims.sid.parse().map_err(|_| ApiError::InvalidToken)?;
                let method = AuthMethod::from_amr(&claims.amr).ok_or(ApiError::InvalidToken)?;
                let scopes = claims.scope.split_whitespace().map(str::to_owned).collect();
                // The token's own roles are ignored: the account's count.
                let granted = Granted { session: Some(session), roles: Vec::new(), scopes };
                for_account(&state.db, user_id, granted, method).await?
            }
        };
        // Verified once per request, however many extractors ask.
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// What a verified token grants before the account has its say.
struct Granted {
    /// The session this service issued the token in, which must be live.
    session: Option<Uuid>,
    /// Roles from outside the account (a provider's `role_map`).
    roles: Vec<Role>,
    scopes: Vec<String>,
}

/// The principal for a token of an account, as the account stands now.
///
/// One indexed query per request buys what a stateless token cannot give:
/// disabling an account, ending its session (logout, logout-all, a password
/// change) or a demotion takes effect at once. Roles are the account's
/// current ones (plus any granted from outside); scopes stay as issued but
/// only those the roles allow.
async fn for_account(
    db: &Pool,
    user_id: Uuid,
    granted: Granted,
    method: AuthMethod,
) -> Result<Principal, ApiError> {
    let Some(account) = db::users::access_state(db, user_id, granted.session).await? else {
        tracing::info!(%user_id, "token of a deleted account refused");
        return Err(ApiError::InvalidToken);
    };
    if account.disabled {
        tracing::info!(%user_id, "token of a disabled account refused");
        return Err(ApiError::InvalidToken);
    }
    if granted.session.is_some() && !account.session_live {
        tracing::info!(%user_id, "token of an ended session refused");
        return Err(ApiError::InvalidToken);
    }
    let mut roles = account.roles;
    roles.extend(granted.roles);
    roles.sort();
    roles.dedup();
    let allowed = authz::scopes_for(&roles);
    let scopes = granted.scopes.into_iter().filter(|scope| allowed.contains(scope)).collect();
    Ok(Principal { subject: Subject::User(user_id), roles, scopes, method })
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
