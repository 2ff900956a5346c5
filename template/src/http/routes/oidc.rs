//! `/api/v1/auth/oidc/*`: logging in at the OpenID Connect provider.

use axum::{
    Json,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    auth::{
        Principal,
        oidc::login::{self, BROWSER_COOKIE, Callback, LoginError},
        sessions::TokenPair,
    },
    http::{ApiError, ErrorEnvelope},
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start)).routes(routes!(callback)).routes(routes!(link))
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
        (status = SERVICE_UNAVAILABLE, description = "Too many logins are pending; retry later", body = ErrorEnvelope),
    ),
)]
pub async fn start(State(state): State<AppState>) -> Result<Response, ApiError> {
    let oidc = state.auth.oidc.as_ref().ok_or(ApiError::NotFound)?;
    let redirect = login::start(&state.db, &state.data_keys, oidc, None).await?;
    let location = HeaderValue::from_str(redirect.location.as_str()).map_err(anyhow::Error::from)?;
    Ok((StatusCode::FOUND, [(header::LOCATION, location)], browser_cookie(&redirect)?).into_response())
}

/// Where the browser goes to link a provider identity.
#[derive(Serialize, ToSchema)]
pub struct LinkStart {
    /// The provider's authorization URL: navigate the browser there.
    pub location: String,
}

/// Link a provider identity to the caller's account.
///
/// The safe way to join a provider login to an account that has a
/// password: sign in, call this, then send the browser to `location`. The
/// callback links whichever identity logs in there to the caller's
/// account, ends the account's other sessions and answers with a new token
/// pair. The login is bound to this browser by a cookie, so the front end
/// must call this from the API's own site.
#[utoipa::path(
    post,
    path = "/api/v1/auth/oidc/link",
    tag = "auth",
    responses(
        (status = OK, description = "Navigate the browser to `location`", body = LinkStart),
        (status = NOT_FOUND, description = "No provider is configured", body = ErrorEnvelope),
        (status = SERVICE_UNAVAILABLE, description = "Too many logins are pending; retry later", body = ErrorEnvelope),
    ),
)]
pub async fn link(State(state): State<AppState>, principal: Principal) -> Result<Response, ApiError> {
    let oidc = state.auth.oidc.as_ref().ok_or(ApiError::NotFound)?;
    let redirect = login::start(&state.db, &state.data_keys, oidc, Some(principal.user_id()?)).await?;
    let body = LinkStart { location: redirect.location.to_string() };
    Ok((browser_cookie(&redirect)?, Json(body)).into_response())
}

/// The short-lived cookie that binds a login to the browser that began it.
fn browser_cookie(redirect: &login::Redirect) -> Result<[(header::HeaderName, HeaderValue); 1], ApiError> {
    let cookie = format!(
        "{BROWSER_COOKIE}={}; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=Lax",
        redirect.browser_binding
    );
    Ok([(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(anyhow::Error::from)?)])
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
        (status = CONFLICT, description = "The email belongs to an account that must link the provider while signed in, or the identity is linked to another account", body = ErrorEnvelope),
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
    let callback = Callback { code: &code, state: &state_param, browser_binding: binding.as_deref() };
    let pair = login::finish(&state.db, &state.data_keys, &state.auth, &state.audit, oidc, &callback).await?;
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
