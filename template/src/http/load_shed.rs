//! Load shedding: at most `server.max_concurrent_requests` requests are
//! handled at once, and one more is answered 503 with `Retry-After` at once
//! instead of waiting in a queue without end (where it would only time out
//! later, holding memory and a connection meanwhile).
//!
//! The health probes are never shed: an orchestrator must see a busy
//! instance as alive and ready, not restart it for being busy.

use std::sync::Arc;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::sync::Semaphore;

use super::{ApiError, routes::health::PROBES};

/// The concurrency cap, shared by every clone of the router.
#[derive(Clone)]
pub struct Cap(Arc<Semaphore>);

impl Cap {
    #[must_use]
    pub fn new(max_concurrent: usize) -> Self {
        Self(Arc::new(Semaphore::new(max_concurrent)))
    }
}

pub async fn middleware(State(cap): State<Cap>, request: Request, next: Next) -> Response {
    let probe =
        request.extensions().get::<MatchedPath>().is_some_and(|route| PROBES.contains(&route.as_str()));
    if probe {
        return next.run(request).await;
    }
    let Ok(_slot) = cap.0.try_acquire_owned() else {
        return ApiError::Overloaded.into_response();
    };
    next.run(request).await
}
