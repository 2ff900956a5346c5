//! The connection pool and the migrations. What differs between database
//! backends (the sqlx driver, connection settings, creating the database)
//! lives in `backend`, so the rest of the code names neither.

pub mod audit;
mod backend;
pub mod email_tokens;
pub mod identities;
pub mod notes;
pub mod oidc_logins;
pub mod refresh_tokens;
pub mod users;
pub mod window_counters;

use anyhow::Context;
pub use backend::{Backend, insecure_transport};
use sqlx::pool::PoolOptions;

use crate::config::Config;

pub type Pool = sqlx::Pool<Backend>;

/// A transaction, for changes that must happen together or not at all.
pub type Tx<'a> = sqlx::Transaction<'a, Backend>;

/// Migrations are compiled into the binary, so a deployment always carries
/// exactly the schema its code was built and tested against.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Opens the pool, creating the database first where the backend allows it.
pub async fn connect(config: &Config) -> anyhow::Result<Pool> {
    let url = &config.database.url;
    backend::prepare(url, config.env).await?;
    PoolOptions::<Backend>::new()
        .max_connections(config.database.max_connections)
        .acquire_timeout(config.database.acquire_timeout)
        .connect_with(backend::connect_options(url)?)
        .await
        .with_context(|| format!("connecting to the database at {}", url.redacted()))
}

pub async fn migrate(pool: &Pool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("applying database migrations")
}

/// One round trip to the database, for the readiness probe.
pub async fn ping(pool: &Pool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop)
}
