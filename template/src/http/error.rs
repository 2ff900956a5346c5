//! One error shape for every failure:
//! `{"error":{"code":"NOT_FOUND","message":"…","request_id":"…"}}`.
//!
//! Handlers return [`ApiError`]. It becomes a status plus an [`ErrorReport`]
//! in the response extensions, and [`render`], a middleware near the top of
//! the stack, writes the body of *every* error response: ours, and those that
//! axum and tower-http produce on their own (404, 405, 408, 413, 415, extractor
//! rejections, caught panics). No code path can therefore send a raw message
//! to a client, and every error body carries the request id that also tags
//! the log lines holding the detail.

use std::{any::Any, borrow::Cow};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::request_id::RequestId;
use crate::{
    admin::AdminError,
    auth::{
        AuthError, AuthenticationError, NoAccount, oidc::login::LoginError, verification::VerificationError,
    },
    db,
};

/// Every way a request can fail that a handler reports. The doc comment of
/// each variant says why it maps to its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad request (400): the body is not JSON at all, so there is no field
    /// to blame.
    #[error("malformed request: {0}")]
    BadRequest(&'static str),
    /// Unauthorized (401) without a token: the route needs one. The
    /// `WWW-Authenticate: Bearer` challenge tells the client which kind.
    #[error("authentication required")]
    Unauthenticated,
    /// Unauthorized (401) with `error="invalid_token"`: a token was sent but
    /// is expired, forged, or not meant for this API. Which one is logged,
    /// never told, so that forgers learn nothing.
    #[error("invalid access token")]
    InvalidToken,
    /// Unauthorized (401) at login: the same answer for an unknown email, a
    /// wrong password and a locked or disabled account, so that the answer
    /// does not reveal which accounts exist.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Unauthorized (401) at refresh: the refresh token is unknown, expired,
    /// revoked or reused; the client must log in again.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// Forbidden (403): authenticated, but without the right for this.
    #[error("forbidden")]
    Forbidden,
    /// Forbidden (403) with its own code: the account must prove its
    /// address first, which it can do without help (resend the link).
    #[error("email not verified")]
    EmailNotVerified,
    /// Not found (404). Also the answer for objects that exist but that the
    /// caller may not see, so that a probe cannot tell the two apart.
    #[error("not found")]
    NotFound,
    /// Conflict (409): the request is valid but clashes with existing state
    /// (an email already registered). The message is written for clients.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Payload too large (413): a body over the route's limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// Unsupported media type (415): a body that is not declared as JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Forbidden (403) on the plain-HTTP listener: anything but GET or HEAD.
    /// A redirected POST would appear to work while the credentials in it
    /// crossed the network in the clear; the client must be fixed instead.
    #[error("HTTPS required")]
    HttpsRequired,
    /// Unprocessable entity (422): well-formed JSON that breaks a rule; each
    /// broken rule is listed under `details` with its field.
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    /// Too many requests (429) with `Retry-After`: the client spent its rate
    /// limit (`rate_limit`). Retrying sooner only fails again.
    #[error("rate limited; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Service unavailable (503) with `Retry-After`: more of this work is
    /// running or waiting than the service takes on at once (password
    /// hashing, pending logins). The request was fine; it is shed at once
    /// rather than queued without end, and may succeed shortly.
    #[error("overloaded")]
    Overloaded,
    /// Service unavailable (503) with `Retry-After`. A dependency (the
    /// database) is unreachable or cannot do its work now (out of disk,
    /// read-only): the request was fine and may succeed on retry, so this is
    /// not a 500, and clients must not retry at once.
    #[error("service unavailable: {0:#}")]
    Unavailable(#[source] anyhow::Error),
    /// Service unavailable (503) with `Retry-After` from `/readyz`: the named
    /// dependencies are down, or the service is shutting down. Names only,
    /// never why: the probe is public.
    #[error("not ready: {0:?}")]
    NotReady(Vec<&'static str>),
    /// Internal error (500): anything unexpected. The cause is logged with the
    /// request id; the client learns only that it happened, never what (no
    /// driver text, no file paths, no panic messages).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The `Retry-After` of a shed request: soon, since the work it waited for
/// takes milliseconds.
pub const RETRY_AFTER_SECS: &str = "1";

/// The `Retry-After` while a dependency is down: outages last seconds at
/// least, and every client retrying at once would prolong them.
const OUTAGE_RETRY_AFTER_SECS: &str = "5";

/// One broken rule of a request: which field, and what the rule is. The
/// message states the rule and never repeats the submitted value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    #[schema(example = "email")]
    pub field: String,
    #[schema(example = "must be an email address")]
    pub message: String,
}

impl FieldError {
    #[must_use]
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated
            | Self::InvalidToken
            | Self::InvalidCredentials
            | Self::InvalidRefreshToken => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::HttpsRequired | Self::EmailNotVerified => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::NotReady(_) | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `WWW-Authenticate` challenge every 401 carries (RFC 6750).
    fn challenge(&self) -> Option<&'static str> {
        match self {
            Self::InvalidToken => Some("Bearer error=\"invalid_token\""),
            Self::Unauthenticated | Self::InvalidCredentials | Self::InvalidRefreshToken => Some("Bearer"),
            _ => None,
        }
    }

    /// What the body says: the status's standard report, refined where the
    /// variant knows more that is safe to tell.
    fn report(self) -> ErrorReport {
        let mut report = ErrorReport::for_status(self.status());
        let (code, message) = match self {
            Self::BadRequest(message) | Self::Conflict(message) => (report.code, message),
            Self::InvalidToken => ("INVALID_TOKEN", "The access token is invalid or has expired."),
            Self::InvalidCredentials => ("INVALID_CREDENTIALS", "The email or password is incorrect."),
            Self::InvalidRefreshToken => {
                ("INVALID_REFRESH_TOKEN", "The refresh token is invalid, expired or revoked; log in again.")
            }
            Self::HttpsRequired => (
                "HTTPS_REQUIRED",
                "Use HTTPS: this plain-HTTP listener only redirects GET and HEAD requests.",
            ),
            Self::Overloaded => ("SERVICE_UNAVAILABLE", "The service is busy; retry shortly."),
            Self::NotReady(down) => {
                report.message = Cow::Owned(format!("Not ready: {}.", down.join(", ")));
                return report;
            }
            Self::RateLimited { .. } => {
                ("RATE_LIMITED", "Too many requests; retry after the time in the Retry-After header.")
            }
            Self::EmailNotVerified => (
                "EMAIL_NOT_VERIFIED",
                "Confirm your email address first; POST /api/v1/auth/verify-email/resend sends the link again.",
            ),
            Self::Validation(details) => {
                report.details = Some(details);
                ("VALIDATION_FAILED", "The request breaks the rules listed in `details`.")
            }
            _ => return report,
        };
        report.code = code;
        report.message = Cow::Borrowed(message);
        report
    }
}

/// A database error is never the client's fault nor safe to show. One that
/// says the database cannot do its work now (`db::is_outage`: unreachable,
/// out of disk, read-only) is an outage, 503; any other is a fault here,
/// 500.
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if db::is_outage(&err) { Self::Unavailable(err.into()) } else { Self::Internal(err.into()) }
    }
}

// Every service error becomes an answer here, and only here: services name
// what went wrong in their own terms and never know about HTTP.

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::InvalidCredentials => Self::InvalidCredentials,
            // The caller proved who they are with a token; naming the field
            // tells them nothing they could not learn by trying.
            AuthError::WrongCurrentPassword => {
                Self::Validation(vec![FieldError::new("current_password", "is not the current password")])
            }
            AuthError::InvalidLink => invalid_link(),
            AuthError::WeakPassword { field, reason } => {
                Self::Validation(vec![FieldError::new(field, reason)])
            }
            AuthError::InvalidRefreshToken => Self::InvalidRefreshToken,
            // The token was valid a moment ago; its account is gone.
            AuthError::UnknownAccount => Self::InvalidToken,
            AuthError::Overloaded(_) => Self::Overloaded,
            AuthError::Database(err) => err.into(),
            AuthError::Internal(err) => Self::Internal(err),
        }
    }
}

impl From<VerificationError> for ApiError {
    fn from(err: VerificationError) -> Self {
        match err {
            VerificationError::InvalidLink => invalid_link(),
            // Only the account holder sees this, after proving the new
            // address: the address was free when they asked.
            VerificationError::AddressTaken => Self::Conflict("Another account has this address now."),
            VerificationError::Database(err) => err.into(),
            VerificationError::Internal(err) => Self::Internal(err),
        }
    }
}

/// A mailed link's token that is unknown, used, replaced or expired: which
/// one is not told.
fn invalid_link() -> ApiError {
    ApiError::Validation(vec![FieldError::new("token", "is invalid, used or expired; ask for a new link")])
}

impl From<AuthenticationError> for ApiError {
    fn from(err: AuthenticationError) -> Self {
        match err {
            // Why is logged, never told, so that forgers learn nothing.
            AuthenticationError::Refused(reason) => {
                tracing::info!(reason, "access token refused");
                Self::InvalidToken
            }
            AuthenticationError::Database(err) => err.into(),
        }
    }
}

/// Services and provider users without an account here may call what the
/// policy allows them, but not what needs an account.
impl From<NoAccount> for ApiError {
    fn from(_: NoAccount) -> Self {
        Self::Forbidden
    }
}

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
            LoginError::LinkWhileSignedIn => Self::Conflict(
                "An account with this email exists. Log in with its password, then link this provider \
                 from the account (POST /api/v1/auth/oidc/link).",
            ),
            LoginError::IdentityTaken => {
                Self::Conflict("This provider identity is linked to another account.")
            }
            LoginError::TooManyPending => Self::Overloaded,
            // As at a password login: a disabled account is not told apart.
            LoginError::Disabled => Self::InvalidCredentials,
            LoginError::Database(err) => err.into(),
            LoginError::Internal(err) => Self::Internal(err),
        }
    }
}

impl From<crate::notes::NotesError> for ApiError {
    fn from(err: crate::notes::NotesError) -> Self {
        use crate::notes::NotesError;
        match err {
            // Another user's note answers exactly like a missing one.
            NotesError::NotFound => Self::NotFound,
            // Rare: concurrent writes to one note; the client may simply retry.
            NotesError::Contended => Self::Conflict("the note was changed by another request; try again"),
            NotesError::NoAccount(err) => err.into(),
            NotesError::Database(err) => err.into(),
            // A stored value that does not open is a fault here, never the client's.
            NotesError::Encryption(err) => Self::Internal(err.into()),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::NoSuchAccount => Self::NotFound,
            AdminError::OwnAccount => Self::Conflict(
                "Administrators cannot disable their own account or drop their own admin role; another \
                 admin must.",
            ),
            AdminError::LastAdmin => {
                Self::Conflict("The last active admin cannot lose the admin role or be disabled.")
            }
            AdminError::AccountExists => Self::Conflict("An account with this email exists already."),
            AdminError::WeakPassword(reason) => Self::Validation(vec![FieldError::new("password", reason)]),
            // Only the command line proves an account's password this way.
            AdminError::NotTheAccountsPassword => Self::Forbidden,
            AdminError::Overloaded(_) => Self::Overloaded,
            AdminError::Database(err) => err.into(),
            AdminError::Internal(err) => Self::Internal(err),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Runs inside the request span, so these lines carry the request id.
        match &self {
            Self::Internal(err) => tracing::error!(error = format!("{err:#}"), "request failed"),
            Self::Unavailable(err) => {
                tracing::warn!(error = format!("{err:#}"), "dependency unavailable");
            }
            _ => {}
        }
        let mut response = self.status().into_response();
        if let Some(challenge) = self.challenge() {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        match self {
            Self::Overloaded => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
            }
            Self::Unavailable(_) | Self::NotReady(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static(OUTAGE_RETRY_AFTER_SECS));
            }
            Self::RateLimited { retry_after_secs } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response.extensions_mut().insert(self.report());
        response
    }
}

/// What an error response says, before `render` adds the request id.
#[derive(Clone, Debug)]
pub struct ErrorReport {
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub details: Option<Vec<FieldError>>,
}

impl ErrorReport {
    /// The code and client-safe message for a status. Responses that axum or
    /// tower-http produced without a report get theirs from here too.
    #[must_use]
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::BAD_REQUEST => ("BAD_REQUEST", "The request is malformed."),
            StatusCode::UNAUTHORIZED => ("UNAUTHORIZED", "Authentication is required."),
            StatusCode::FORBIDDEN => ("FORBIDDEN", "You may not perform this action."),
            StatusCode::NOT_FOUND => ("NOT_FOUND", "The resource was not found."),
            StatusCode::METHOD_NOT_ALLOWED => {
                ("METHOD_NOT_ALLOWED", "This method is not allowed on this resource.")
            }
            StatusCode::NOT_ACCEPTABLE => ("NOT_ACCEPTABLE", "No acceptable representation is available."),
            StatusCode::REQUEST_TIMEOUT => ("REQUEST_TIMEOUT", "The request took too long."),
            StatusCode::CONFLICT => ("CONFLICT", "The request conflicts with the current state."),
            StatusCode::PAYLOAD_TOO_LARGE => ("PAYLOAD_TOO_LARGE", "The request body is too large."),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("UNSUPPORTED_MEDIA_TYPE", "Send the body as application/json.")
            }
            StatusCode::UNPROCESSABLE_ENTITY => ("VALIDATION_FAILED", "The request is not valid."),
            StatusCode::TOO_MANY_REQUESTS => ("TOO_MANY_REQUESTS", "Too many requests; slow down."),
            StatusCode::SERVICE_UNAVAILABLE => {
                ("SERVICE_UNAVAILABLE", "The service is temporarily unavailable.")
            }
            status if status.is_client_error() => ("BAD_REQUEST", "The request cannot be processed."),
            _ => ("INTERNAL_ERROR", "An internal error occurred."),
        };
        Self { code, message: Cow::Borrowed(message), details: None }
    }
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable, SCREAMING_SNAKE_CASE.
    #[schema(example = "NOT_FOUND")]
    pub code: &'static str,
    /// Safe to show to a user; never contains internal detail.
    #[schema(example = "The resource was not found.")]
    pub message: Cow<'static, str>,
    /// Also in the `X-Request-Id` header and in every log line of the request.
    #[schema(example = "5b0c3f0e-2a4b-4d9e-8f1e-6c2d7a9b1e40")]
    pub request_id: String,
    /// The broken rules; only with `VALIDATION_FAILED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
}

/// Writes the body of every 4xx and 5xx response, keeping its headers
/// (`Allow`, `WWW-Authenticate`, CORS, …) and dropping whatever body an inner
/// layer produced.
pub async fn render(request: Request, next: Next) -> Response {
    let request_id =
        request.extensions().get::<RequestId>().map(|id| id.as_str().to_owned()).unwrap_or_default();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, _discarded) = response.into_parts();
    let report = parts.extensions.remove::<ErrorReport>().unwrap_or_else(|| ErrorReport::for_status(status));
    let envelope = ErrorEnvelope {
        error: ErrorBody { code: report.code, message: report.message, request_id, details: report.details },
    };
    // Serializing plain strings cannot fail.
    let body = serde_json::to_vec(&envelope).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

/// The response to a panic caught by `CatchPanicLayer`: a plain 500. The panic
/// message may hold anything, so it goes to the log, never to the client.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(panic) => panic
            .downcast_ref::<&str>()
            .map_or_else(|| "non-string panic payload".to_owned(), |s| (*s).to_owned()),
    };
    ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}
