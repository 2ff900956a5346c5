//! Security headers on every response, and CORS.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    set_header::response::SetMultipleResponseHeadersLayer,
};

use super::request_id::X_REQUEST_ID;
use crate::config::CorsConfig;

/// API responses are data, never a page: nothing may load from them and no
/// page may frame them.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Swagger UI is a page, served from this origin only (it is vendored into
/// the binary). Its inline style attributes need `'unsafe-inline'` for styles;
/// scripts stay restricted to this origin.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'none'";

/// Headers every response carries unless a route set its own (the docs set
/// their CSP). `Server` is never added: hyper sends none.
#[must_use]
pub fn security_headers<B>() -> SetMultipleResponseHeadersLayer<axum::http::Response<B>> {
    let fixed = |name: HeaderName, value: &'static str| (name, HeaderValue::from_static(value)).into();
    SetMultipleResponseHeadersLayer::if_not_present(vec![
        // Two years, as the HSTS preload list asks for.
        fixed(header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains"),
        fixed(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        fixed(header::CONTENT_SECURITY_POLICY, API_CSP),
        fixed(header::X_FRAME_OPTIONS, "DENY"),
        fixed(header::REFERRER_POLICY, "no-referrer"),
        // Responses may hold personal data: no shared or browser cache keeps them.
        fixed(header::CACHE_CONTROL, "no-store"),
    ])
}

/// Cross-origin requests are denied unless the origin is listed exactly in
/// `cors.allowed_origins` (validated at start-up). Credentials travel in the
/// `Authorization` header, never cookies, so `Allow-Credentials` stays off.
pub fn cors(config: &CorsConfig) -> CorsLayer {
    let origins: Vec<HeaderValue> =
        config.allowed_origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, X_REQUEST_ID])
        .expose_headers([X_REQUEST_ID])
        .max_age(Duration::from_mins(10))
}
