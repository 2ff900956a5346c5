//! Rate limits at the HTTP edge: charging a request to its keys, refusing
//! it with 429 and `Retry-After`, and telling the client where it stands in
//! the `RateLimit-Policy` and `RateLimit` header fields of
//! draft-ietf-httpapi-ratelimit-headers-10:
//!
//! ```text
//! RateLimit-Policy: "credentials";q=10;w=60
//! RateLimit: "credentials";r=7;t=18
//! ```
//!
//! `q` requests per `w` seconds; `r` requests left now and `t` seconds
//! until the quota is whole again (or, at `r=0`, until the next request
//! may pass). `http::policy` charges every request before its handler;
//! handlers of routes that name an account in their body charge it too.

use std::sync::{Arc, Mutex, PoisonError};

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderName, HeaderValue, request::Parts},
};

use super::ApiError;
use crate::{
    audit::{Auditor, Event, Outcome},
    auth::Subject,
    domain::Email,
    rate_limit::{Charge, Class, Key, RateLimiter},
};

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The rate limit of the request's route and what the request was charged
/// so far. The policy middleware puts it in the request; a handler takes
/// it to charge the account its body names.
#[derive(Clone)]
pub struct RouteLimit {
    limiter: Arc<RateLimiter>,
    audit: Arc<Auditor>,
    class: Class,
    charges: Arc<Mutex<Vec<Charge>>>,
}

impl RouteLimit {
    #[must_use]
    pub fn new(limiter: Arc<RateLimiter>, audit: Arc<Auditor>, class: Class) -> Self {
        Self { limiter, audit, class, charges: Arc::default() }
    }

    /// Counts the request against the account `email` names, whether or
    /// not it exists. `Email` is canonical, so that spelling one address
    /// many ways gains nothing.
    pub async fn charge_email(&self, email: &Email) -> Result<(), ApiError> {
        self.charge(Key::Account(email.as_str())).await
    }

    /// Counts the request against the principal behind `subject`.
    pub async fn charge_subject(&self, subject: &Subject) -> Result<(), ApiError> {
        let name = match subject {
            Subject::User(id) => format!("user:{id}"),
            Subject::External(subject) => format!("external:{subject}"),
        };
        self.charge_as(self.class, Key::Account(&name)).await
    }

    /// Counts the request against `key` in the route's class.
    pub async fn charge(&self, key: Key<'_>) -> Result<(), ApiError> {
        self.charge_as(self.class, key).await
    }

    /// Counts the request against `key` in `class`, which may differ from
    /// the route's (a bad token on an authenticated route costs its address
    /// anonymous quota). Refused: 429 with `Retry-After`, and an event in the
    /// audit trail (aggregated per source: a flood of refusals stays small).
    pub async fn charge_as(&self, class: Class, key: Key<'_>) -> Result<(), ApiError> {
        let Some(charge) = self.limiter.charge(class, key).await.map_err(|_| ApiError::Overloaded)? else {
            return Ok(());
        };
        self.charges.lock().unwrap_or_else(PoisonError::into_inner).push(charge);
        if charge.decision.allowed {
            return Ok(());
        }
        let exceeded = Event::new("rate_limit.exceeded", Outcome::Denied).detail("class", class.name());
        self.audit.record_flood(match key {
            Key::Account(_) => exceeded.detail("key", "account"),
            Key::Address(_) => exceeded.detail("key", "address"),
        });
        Err(ApiError::RateLimited { retry_after_secs: seconds(charge.decision.reset_ms) })
    }

    /// Writes the header fields for the charges made: every policy that
    /// applied, and the state of the one closest to refusing.
    pub fn describe(&self, headers: &mut HeaderMap) {
        let charges = self.charges.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(binding) = charges
            .iter()
            .min_by_key(|charge| (charge.decision.remaining, std::cmp::Reverse(charge.decision.reset_ms)))
        else {
            return;
        };
        let mut policies: Vec<String> = Vec::new();
        for charge in charges.iter() {
            let policy = format!(
                "\"{}\";q={};w={}",
                charge.class.name(),
                charge.quota.requests,
                charge.quota.window.as_secs()
            );
            if !policies.contains(&policy) {
                policies.push(policy);
            }
        }
        let state = format!(
            "\"{}\";r={};t={}",
            binding.class.name(),
            binding.decision.remaining,
            seconds(binding.decision.reset_ms)
        );
        for (name, value) in [(RATELIMIT_POLICY, policies.join(", ")), (RATELIMIT, state)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
}

/// Whole seconds, rounded up: a client that waits `t` seconds is never
/// early.
fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

impl<S: Send + Sync> FromRequestParts<S> for RouteLimit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the route policy set no rate limit").into())
    }
}
