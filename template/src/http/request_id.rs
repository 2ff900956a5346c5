//! Request ids: one per request, in the `X-Request-Id` response header, in
//! every error body and in every log line of the request.
//!
//! A caller's id is kept when it is well-formed, so that a request can be
//! followed across services; anything else is replaced. tower-http's
//! request-id layer keeps whatever the client sent, which would let a caller
//! inject arbitrary text into logs, hence this small middleware.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id accepted from a client.
const MAX_LEN: usize = 64;

/// A request id that is 1 to 64 characters of `A-Z a-z 0-9 - _ . :`, so it is
/// safe in a header, a JSON string and a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Accepts a client-supplied id only if it is well-formed.
    #[must_use]
    pub fn parse(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        let well_formed = (1..=MAX_LEN).contains(&bytes.len())
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        well_formed.then(|| Self(value.clone()))
    }

    #[must_use]
    pub fn generate() -> Self {
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        // A hyphenated UUID is always a valid header value.
        Self(HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("generated")))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        // `parse` and `generate` only admit ASCII.
        self.0.to_str().unwrap_or_default()
    }
}

pub async fn middleware(mut request: Request, next: Next) -> Response {
    let id =
        request.headers().get(&X_REQUEST_ID).and_then(RequestId::parse).unwrap_or_else(RequestId::generate);
    request.headers_mut().insert(X_REQUEST_ID, id.0.clone());
    request.extensions_mut().insert(id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(X_REQUEST_ID, id.0);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids_are_kept() {
        for id in ["abc", "5b0c3f0e-2a4b-4d9e-8f1e-6c2d7a9b1e40", "trace:span.1_x", &"a".repeat(64)] {
            let value = HeaderValue::from_str(id).expect("header");
            assert_eq!(RequestId::parse(&value).map(|id| id.as_str().to_owned()), Some(id.to_owned()));
        }
    }

    #[test]
    fn malformed_ids_are_refused() {
        for id in ["", "has space", "new\tline", "quote\"", "<script>", "ünïcode", &"a".repeat(65)] {
            let value = HeaderValue::from_bytes(id.as_bytes()).expect("legal header bytes");
            assert_eq!(RequestId::parse(&value), None, "{id:?}");
        }
    }

    #[test]
    fn generated_ids_are_unique_and_well_formed() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_ne!(a, b);
        assert_eq!(RequestId::parse(&a.0), Some(a));
    }
}
