//! Refusing a body so that every client sees the answer.
//!
//! A request is often refused before its body is read to the end: at once
//! when `Content-Length` declares the body too large (413), when the
//! extractor reaches the route's limit (413), or before any handler runs
//! (401, 403, 429). Over HTTP/1.1 the connection then closes and clients
//! read the answer. Over HTTP/2 the stream is reset while the client is
//! still uploading, and common clients (curl with nghttp2 among them)
//! report `Stream error in the HTTP/2 framing layer` instead of the answer.
//! So over HTTP/2 the rest of a refused body is read and discarded first,
//! up to [`MAX_DISCARDED_BYTES`] and while it keeps arriving (the body idle
//! timeout), and the answer follows its end. Beyond that bound the client
//! gets the reset: reading more would serve the sender, not the client.
//! Over HTTP/1.1 nothing is read for the sender: the answer says
//! `Connection: close`, since the unread body stands between it and the
//! connection's next request, so that the client does not send one down a
//! connection that is closing. No library does this; `RequestBodyLimitLayer`
//! below still bounds bodies without a declared length.

use std::{
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::{Request, State},
    http::{HeaderValue, Version, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;

use super::ApiError;

/// The most of a refused HTTP/2 upload that is read before the answer:
/// the largest `server.body_limit_bytes` allows.
pub const MAX_DISCARDED_BYTES: u64 = 16 * 1024 * 1024;

/// Answers 413 to a body declared larger than `limit`. The rest of the body
/// of a refused (4xx) request is read before the answer leaves over HTTP/2;
/// over HTTP/1.1 the answer closes the connection.
pub async fn refuse_oversize(
    State((limit, idle_timeout)): State<(usize, Duration)>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let over_http2 = request.version() == Version::HTTP_2;
    if declared.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)) {
        if !over_http2 {
            return closing(ApiError::PayloadTooLarge.into_response());
        }
        if declared.is_some_and(|length| length <= MAX_DISCARDED_BYTES) {
            discard(request.into_body(), idle_timeout).await;
        }
        return ApiError::PayloadTooLarge.into_response();
    }
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    // The handler reads the body through `Shared`, so that what it leaves
    // unread can still be read here.
    let (parts, body) = request.into_parts();
    let body = Arc::new(Mutex::new(body));
    let response = next.run(Request::from_parts(parts, Body::new(Shared(body.clone())))).await;
    if response.status().is_client_error() {
        let rest = std::mem::take(&mut *body.lock().unwrap_or_else(PoisonError::into_inner));
        if over_http2 {
            discard(rest, idle_timeout).await;
        } else if !rest.is_end_stream() {
            return closing(response);
        }
    }
    response
}

/// `response`, telling an HTTP/1.1 client that the connection ends with it.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Reads `body` to its end, or to [`MAX_DISCARDED_BYTES`], or until it
/// fails or pauses longer than `idle_timeout`.
async fn discard(mut body: Body, idle_timeout: Duration) {
    let mut read = 0_u64;
    while read <= MAX_DISCARDED_BYTES {
        match tokio::time::timeout(idle_timeout, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                read += frame.data_ref().map_or(0, |data| u64::try_from(data.len()).unwrap_or(u64::MAX));
            }
            Ok(Some(Err(_)) | None) | Err(_) => return,
        }
    }
}

/// A request body that the middleware and the handler both hold.
struct Shared(Arc<Mutex<Body>>);

impl HttpBody for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let mut body = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Pin::new(&mut *body).poll_frame(cx)
    }
}
