//! Gives the audit trail the request's context: the resolved client
//! address, the user agent and the request id, for every event recorded
//! while the request is handled (see `audit::in_context`).

use axum::{extract::Request, http::header, middleware::Next, response::Response};

use super::{client_address::ClientAddr, request_id::RequestId};
use crate::audit::{self, RequestContext};

pub async fn middleware(request: Request, next: Next) -> Response {
    let context = RequestContext {
        source: request.extensions().get::<ClientAddr>().map(|ClientAddr(address)| *address),
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|agent| agent.to_str().ok())
            .map(str::to_owned),
        request_id: request.extensions().get::<RequestId>().map(|id| id.as_str().to_owned()),
    };
    audit::in_context(context, next.run(request)).await
}
