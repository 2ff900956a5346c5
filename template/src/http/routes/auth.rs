//! `/api/v1/auth/*` and `/.well-known/jwks.json`: thin handlers over
//! `auth::accounts` and `auth::sessions`.

use axum::{
    Json,
    extract::{DefaultBodyLimit, State},
    http::{HeaderValue, StatusCode, header},
    response::IntoResponse,
};
use jsonwebtoken::jwk::Jwk;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState,
    audit::Actor,
    auth::{
        Principal,
        accounts::{self, Account, Registration},
        recovery,
        sessions::{self, TokenPair},
        verification,
    },
    authz::Role,
    domain::{DisplayName, Email, LinkToken, Password},
    http::{ApiError, ErrorEnvelope, client_address::ClientAddr, extract::JsonBody, rate_limit::RouteLimit},
};

/// Largest body of the account routes: credentials and names are short.
const BODY_LIMIT: usize = 8 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(change_password))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(request_password_reset))
        .routes(routes!(confirm_password_reset))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .routes(routes!(jwks))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    email: Email,
    /// At least `auth.password_min_length` characters (12 by default), not a
    /// common password, not the email.
    password: Password,
    #[serde(default)]
    display_name: Option<DisplayName>,
}

/// An account as its owner may see it.
#[derive(Serialize, ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    pub email: String,
    /// Whether the account proved it receives mail at `email`.
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub roles: Vec<Role>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<Account> for UserResponse {
    fn from(account: Account) -> Self {
        Self {
            id: account.id,
            email: account.email,
            email_verified: account.email_verified,
            display_name: account.display_name,
            roles: account.roles,
            created_at: account.created_at,
        }
    }
}

/// The answer to a request whose outcome arrives by mail.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    #[schema(example = "If the address can receive it, a message is on its way.")]
    pub message: &'static str,
}

pub const MAIL_ON_ITS_WAY: Accepted =
    Accepted { message: "If the address can receive it, a message is on its way." };

/// Create a local account.
///
/// Answers the same, in the same time, whether the address is new or has
/// an account already: a new address gets a link to confirm it, a taken
/// one a notice, and the existing account does not change.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = ACCEPTED, description = "A message is on its way to the address", body = Accepted),
        (status = SERVICE_UNAVAILABLE, description = "Too many password checks at once; retry shortly", body = ErrorEnvelope),
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    limit: RouteLimit,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    limit.charge_email(&request.email).await?;
    let registration =
        Registration { email: request.email, password: request.password, display_name: request.display_name };
    accounts::register(&state.db, &state.auth, &state.audit, &state.mail, registration).await?;
    Ok((StatusCode::ACCEPTED, Json(MAIL_ON_ITS_WAY)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The token of the link, from its fragment (`#token=…`).
    token: LinkToken,
}

/// Confirm an email address with the token of the link sent to it.
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email",
    tag = "auth",
    request_body = LinkRequest,
    responses(
        (status = NO_CONTENT, description = "The address is confirmed (and, for a change of address, now the account's)"),
        (status = CONFLICT, description = "Another account has the address now", body = ErrorEnvelope),
    ),
)]
pub async fn verify_email(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<LinkRequest>,
) -> Result<StatusCode, ApiError> {
    verification::confirm(&state.db, request.token.as_str()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send the caller's confirmation link again (at most a few per hour).
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email/resend",
    tag = "auth",
    responses(
        (status = ACCEPTED, description = "Unless the address is confirmed already, a link is on its way", body = Accepted),
    ),
)]
pub async fn resend_verification(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    verification::resend(&state.db, &state.mail, &principal).await?;
    Ok((StatusCode::ACCEPTED, Json(MAIL_ON_ITS_WAY)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    email: Email,
}

/// Ask for a password reset link.
///
/// Answers the same whether the address has an account or not.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset",
    tag = "auth",
    request_body = PasswordResetRequest,
    responses(
        (status = ACCEPTED, description = "If the address has an account, a link is on its way", body = Accepted),
    ),
)]
pub async fn request_password_reset(
    State(state): State<AppState>,
    limit: RouteLimit,
    JsonBody(request): JsonBody<PasswordResetRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    limit.charge_email(&request.email).await?;
    recovery::request(&state.db, &state.mail, &request.email).await?;
    Ok((StatusCode::ACCEPTED, Json(MAIL_ON_ITS_WAY)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirmation {
    token: LinkToken,
    /// Under the same policy as at registration.
    new_password: Password,
}

/// Choose a new password with the token of a reset link; every session of
/// the account ends.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset/confirm",
    tag = "auth",
    request_body = PasswordResetConfirmation,
    responses(
        (status = NO_CONTENT, description = "The password is changed; every session of the account ended"),
        (status = SERVICE_UNAVAILABLE, description = "Too many password checks at once; retry shortly", body = ErrorEnvelope),
    ),
)]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<PasswordResetConfirmation>,
) -> Result<StatusCode, ApiError> {
    recovery::confirm(&state.db, &state.auth, &state.mail, request.token.as_str(), &request.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: Email,
    password: Password,
}

/// Log in with email and password.
///
/// An unknown email, a wrong password, a disabled account and a throttled
/// attempt answer alike.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = OK, description = "An access token and a refresh token", body = TokenPair),
        (status = UNAUTHORIZED, description = "The credentials are not valid", body = ErrorEnvelope),
        (status = SERVICE_UNAVAILABLE, description = "Too many password checks at once; retry shortly", body = ErrorEnvelope),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    limit: RouteLimit,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    limit.charge_email(&request.email).await?;
    Ok(Json(
        accounts::login(&state.db, &state.auth, &state.audit, &request.email, &request.password, client)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Exchange a refresh token for a new pair.
///
/// The presented token stops working. Presenting it again revokes the whole
/// session, as only a copied token can be used twice.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = OK, description = "A new access token and refresh token", body = TokenPair),
        (status = UNAUTHORIZED, description = "The refresh token is invalid, expired, revoked or reused", body = ErrorEnvelope),
    ),
)]
pub async fn refresh(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(sessions::refresh(&state.db, &state.auth, &state.audit, &request.refresh_token).await?))
}

/// End the session a refresh token belongs to.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = NO_CONTENT, description = "The session is over (also for unknown tokens)"),
    ),
)]
pub async fn logout(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    sessions::end(&state.db, &state.audit, &request.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End every session of the caller, and every access token issued so far.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout-all",
    tag = "auth",
    responses(
        (status = NO_CONTENT, description = "Every refresh token of the caller is revoked, and the access tokens issued so far are refused"),
    ),
)]
pub async fn logout_all(State(state): State<AppState>, principal: Principal) -> Result<StatusCode, ApiError> {
    sessions::end_all(&state.db, &state.audit, principal.user_id()?, Actor::principal(&principal)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    current_password: Password,
    new_password: Password,
}

/// Change the caller's password; every session and access token ends.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password",
    tag = "auth",
    request_body = ChangePasswordRequest,
    responses(
        (status = NO_CONTENT, description = "Changed; every refresh and access token is revoked"),
        (status = UNPROCESSABLE_ENTITY, description = "Wrong current password, or a weak new one", body = ErrorEnvelope),
        (status = SERVICE_UNAVAILABLE, description = "Too many password checks at once; retry shortly", body = ErrorEnvelope),
    ),
)]
pub async fn change_password(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(client): ClientAddr,
    JsonBody(request): JsonBody<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    accounts::change_password(
        &state.db,
        &state.auth,
        principal.user_id()?,
        client,
        &request.current_password,
        &request.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A JSON Web Key Set (RFC 7517).
#[derive(Serialize, ToSchema)]
pub struct JwkSetResponse {
    #[schema(value_type = Vec<Object>)]
    keys: Vec<Jwk>,
}

/// The public keys that verify this service's access tokens.
///
/// Other services verify tokens with these keys; after a rotation the old
/// key stays listed until the tokens it signed have expired.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "auth",
    responses((status = OK, description = "The verification keys", body = JwkSetResponse)),
)]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        // Public keys change rarely; verifiers may cache them for a while.
        [(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"))],
        Json(JwkSetResponse { keys: state.auth.tokens.jwks().keys.clone() }),
    )
}
