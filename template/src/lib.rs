//! A secure-by-default HTTPS API: the library behind the binary and the tests.
//!
//! Each security control lives in the module named after it; `http` composes
//! them into the middleware stack in one visible place.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod encryption;
pub mod http;
pub mod mail;
pub mod maintenance;
pub mod notes;
pub mod rate_limit;
pub mod readiness;
pub mod server;
pub mod telemetry;
pub mod tls;

use std::{ops::Deref, sync::Arc};

/// Everything a handler may use, passed explicitly through axum's `State`.
/// One `Arc`, so that the clone every request and layer takes costs one
/// reference count, not one per service.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

pub struct Services {
    pub config: Arc<config::Config>,
    pub db: db::Pool,
    pub auth: Arc<auth::Auth>,
    pub mail: Arc<mail::Mailer>,
    pub rate_limits: Arc<rate_limit::RateLimiter>,
    pub audit: Arc<audit::Auditor>,
    pub data_keys: Arc<encryption::DataKeys>,
    pub readiness: Arc<readiness::Readiness>,
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl AppState {
    /// The services `config` describes, on `db`, ready to serve. Call it
    /// within the Tokio runtime: it starts the mail and audit writers and
    /// the readiness probes.
    pub fn new(config: config::Config, db: db::Pool) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let rate_limits = Arc::new(rate_limit::RateLimiter::new(&config.rate_limit)?);
        let data_keys = Arc::new(config.encryption.data_keys()?);
        let mail = Arc::new(mail::Mailer::start(&config, db.clone(), data_keys.clone())?);
        Ok(Self(Arc::new(Services {
            auth: Arc::new(auth::Auth::new(&config)?),
            readiness: readiness::Readiness::start(db.clone(), rate_limits.clone(), mail.clone()),
            mail,
            rate_limits,
            audit: audit::Auditor::start(&config.audit, db.clone()),
            data_keys,
            config,
            db,
        })))
    }
}
