//! One span per request: method, matched route, request id and the client's
//! address (`http::client_address`), on every line logged while it runs;
//! then one "request completed" line with status and latency. The route is
//! the template (`/notes/{id}`) and never the raw URI, whose query string
//! may carry secrets. Status and latency go on that line only: recording
//! them on the span would make the JSON formatter rewrite the span's fields
//! twice more per request, for no line that needs them.

use std::time::Duration;

use axum::{
    extract::{MatchedPath, Request},
    http::Response,
};
use tower_http::{
    classify::{ServerErrorsAsFailures, SharedClassifier},
    trace::TraceLayer,
};
use tracing::{Span, field::Empty};

use super::request_id::RequestId;

type MakeSpan = fn(&Request) -> Span;
type OnResponse<B> = fn(&Response<B>, Duration, &Span);

#[must_use]
pub fn layer<B>()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, (), OnResponse<B>, (), (), ()> {
    TraceLayer::new_for_http()
        .make_span_with(make_span as MakeSpan)
        .on_request(())
        .on_response(on_response as OnResponse<B>)
        .on_body_chunk(())
        .on_eos(())
        // 5xx are logged with their cause where they happen (`ApiError`).
        .on_failure(())
}

fn make_span(request: &Request) -> Span {
    let route = request.extensions().get::<MatchedPath>().map_or("<unmatched>", MatchedPath::as_str);
    let request_id = request.extensions().get::<RequestId>().map_or("", RequestId::as_str);
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        request_id,
        client = Empty,
    )
}

fn on_response<B>(response: &Response<B>, latency: Duration, span: &Span) {
    let (status, latency_ms) = (response.status().as_u16(), latency.as_secs_f64() * 1000.0);
    tracing::info!(parent: span, status, latency_ms, "request completed");
}
