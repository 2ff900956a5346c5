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

/// Every way a request can fail that a handler reports. The doc comment of
/// each variant says why it maps to its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Not found (404). Also the answer for objects that exist but that the
    /// caller may not see, so that a probe cannot tell the two apart.
    #[error("not found")]
    NotFound,
    /// Service unavailable (503). A dependency (the database) is unreachable:
    /// the request was fine and may succeed on retry, so this is not a 500.
    #[error("service unavailable: {0:#}")]
    Unavailable(#[source] anyhow::Error),
    /// Internal error (500): anything unexpected. The cause is logged with the
    /// request id; the client learns only that it happened, never what (no
    /// driver text, no file paths, no panic messages).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A database error is never the client's fault nor safe to show.
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        Self::Internal(err.into())
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
            Self::NotFound => {}
        }
        let status = self.status();
        let mut response = status.into_response();
        response
            .extensions_mut()
            .insert(ErrorReport::for_status(status));
        response
    }
}

/// What an error response says, before `render` adds the request id.
#[derive(Clone, Debug)]
pub struct ErrorReport {
    pub code: &'static str,
    pub message: Cow<'static, str>,
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
            StatusCode::METHOD_NOT_ALLOWED => (
                "METHOD_NOT_ALLOWED",
                "This method is not allowed on this resource.",
            ),
            StatusCode::NOT_ACCEPTABLE => (
                "NOT_ACCEPTABLE",
                "No acceptable representation is available.",
            ),
            StatusCode::REQUEST_TIMEOUT => ("REQUEST_TIMEOUT", "The request took too long."),
            StatusCode::CONFLICT => ("CONFLICT", "The request conflicts with the current state."),
            StatusCode::PAYLOAD_TOO_LARGE => {
                ("PAYLOAD_TOO_LARGE", "The request body is too large.")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "UNSUPPORTED_MEDIA_TYPE",
                "Send the body as application/json.",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => {
                ("UNPROCESSABLE_ENTITY", "The request is not valid.")
            }
            StatusCode::TOO_MANY_REQUESTS => ("TOO_MANY_REQUESTS", "Too many requests; slow down."),
            StatusCode::SERVICE_UNAVAILABLE => (
                "SERVICE_UNAVAILABLE",
                "The service is temporarily unavailable.",
            ),
            status if status.is_client_error() => {
                ("BAD_REQUEST", "The request cannot be processed.")
            }
            _ => ("INTERNAL_ERROR", "An internal error occurred."),
        };
        Self {
            code,
            message: Cow::Borrowed(message),
        }
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
}

/// Writes the body of every 4xx and 5xx response, keeping its headers
/// (`Allow`, `WWW-Authenticate`, CORS, …) and dropping whatever body an inner
/// layer produced.
pub async fn render(request: Request, next: Next) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, _discarded) = response.into_parts();
    let report = parts
        .extensions
        .remove::<ErrorReport>()
        .unwrap_or_else(|| ErrorReport::for_status(status));
    let envelope = ErrorEnvelope {
        error: ErrorBody {
            code: report.code,
            message: report.message,
            request_id,
        },
    };
    // Serializing plain strings cannot fail.
    let body = serde_json::to_vec(&envelope).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

/// The response to a panic caught by `CatchPanicLayer`: a plain 500. The panic
/// message may hold anything, so it goes to the log, never to the client.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(panic) => panic.downcast_ref::<&str>().map_or_else(
            || "non-string panic payload".to_owned(),
            |s| (*s).to_owned(),
        ),
    };
    ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}
