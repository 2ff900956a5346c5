//! `/api/v1/auth/oidc/*`: logging in at the OpenID Connect provider.

use axum::{
    Json,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{
    AppState,
    auth::{
        oidc::login::{self, BROWSER_COOKIE, LoginError},
        sessions::TokenPair,
    },
    http::{ApiError, ErrorEnvelope},
};

impl From<LoginError> for ApiError {
    fn from(err: LoginError) -> Self {
        match err {
            // Without a provider the routes do not exist.
            LoginError::NotConfigured => Self::NotFound,
            LoginError::InvalidState => {
                Self::BadRequest("The login expired or began elsewhere; start again.")
            }
            LoginError::Refused(reason) => {
                tracing::warn!(reason, "OpenID Connect login refused");
                Self::BadRequest("The identity provider did not complete the login; start again.")
            }
            LoginError::NoEmail => Self::BadRequest("The identity provider shared no email address."),
            LoginError::UnverifiedEmail => {
                Self::Conflict("An account with this email exists; log in with its password.")
            }
            LoginError::Disabled => Self::InvalidCredentials,
            LoginError::Internal(err) => Self::Internal(err),
        }
    }
}

/// Log in at the identity provider.
///
/// Redirects the browser to the provider with a PKCE challenge, `state` and
/// `nonce`, and sets a short-lived cookie that ties the login to this
/// browser.
#[utoipa::path(
    get,
    path = "/api/v1/auth/oidc/login",
    tag = "auth",
    responses(
        (status = FOUND, description = "To the provider's authorization endpoint"),
        (status = NOT_FOUND, description = "No provider is configured", body = ErrorEnvelope),
    ),
)]
pub async fn start(State(state): State<AppState>) -> Result<Response, ApiError> {
    let oidc = state.auth.oidc.as_ref().ok_or(ApiError::NotFound)?;
    let redirect = login::start(&state.db, oidc).await?;
    let cookie = format!(
        "{BROWSER_COOKIE}={}; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=Lax",
        redirect.browser_binding
    );
    Ok((
        StatusCode::FOUND,
        [
            (
                header::LOCATION,
                HeaderValue::from_str(redirect.location.as_str()).map_err(anyhow::Error::from)?,
            ),
            (header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(anyhow::Error::from)?),
        ],
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    /// Set by the provider instead of `code` when the login failed.
    error: Option<String>,
}

/// The provider's redirect back: this service's own tokens.
#[utoipa::path(
    get,
    path = "/api/v1/auth/oidc/callback",
    tag = "auth",
    params(CallbackParams),
    responses(
        (status = OK, description = "Logged in: this service's token pair", body = TokenPair),
        (status = BAD_REQUEST, description = "The login failed, expired or began in another browser", body = ErrorEnvelope),
        (status = NOT_FOUND, description = "No provider is configured", body = ErrorEnvelope),
        (status = CONFLICT, description = "The email belongs to an account the provider cannot vouch for", body = ErrorEnvelope),
    ),
)]
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Result<Response, ApiError> {
    let oidc = state.auth.oidc.as_ref().ok_or(ApiError::NotFound)?;
    let (Some(code), Some(state_param), None) = (params.code, params.state, params.error.as_ref()) else {
        return Err(LoginError::Refused(params.error.unwrap_or_else(|| "no code".to_owned())).into());
    };
    let binding = browser_binding(&headers);
    let pair = login::finish(&state.db, &state.auth, oidc, &code, &state_param, binding.as_deref()).await?;
    let expire = format!("{BROWSER_COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax");
    Ok(([(header::SET_COOKIE, HeaderValue::from_str(&expire).map_err(anyhow::Error::from)?)], Json(pair))
        .into_response())
}

fn browser_binding(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == BROWSER_COOKIE)
        .map(|(_, value)| value.to_owned())
}
