//! The plain-HTTP listener's only answers: a permanent redirect to the same
//! path on `server.public_url` for GET and HEAD, and for anything else a
//! 403 telling the client to use HTTPS. A POST that followed a redirect
//! would appear to work while its credentials had already crossed the
//! network in the clear, so such a client is stopped, not helped along.
//!
//! The target host comes from configuration, never from the request's
//! `Host` header, so the redirect cannot be pointed elsewhere.

use axum::{
    Router,
    http::{Method, Uri, uri::PathAndQuery},
    middleware::from_fn,
    response::{IntoResponse, Redirect, Response},
};
use url::Url;

use super::{ApiError, error, request_id};

/// The whole plain-HTTP application; its errors have the one error shape.
pub fn router(public_url: Url) -> Router {
    Router::new()
        .fallback(move |method: Method, uri: Uri| {
            let answer = answer(&public_url, &method, &uri);
            async move { answer }
        })
        .layer(from_fn(error::render))
        .layer(from_fn(request_id::middleware))
}

fn answer(public_url: &Url, method: &Method, uri: &Uri) -> Response {
    if method == Method::GET || method == Method::HEAD {
        Redirect::permanent(&https_target(public_url, uri)).into_response()
    } else {
        ApiError::HttpsRequired.into_response()
    }
}

fn https_target(public_url: &Url, uri: &Uri) -> String {
    let path = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    format!("{}{path}", public_url.as_str().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_path_and_query_but_never_the_requested_host() {
        let public = Url::parse("https://api.example.com:8443").expect("url");
        let absolute: Uri = "http://evil.example/notes?page=2".parse().expect("uri");
        assert_eq!(https_target(&public, &absolute), "https://api.example.com:8443/notes?page=2");
        let origin_form: Uri = "/healthz".parse().expect("uri");
        assert_eq!(https_target(&public, &origin_form), "https://api.example.com:8443/healthz");
    }
}
