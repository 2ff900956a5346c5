//! PostgreSQL.

use std::str::FromStr;

use anyhow::Context;
use sqlx::{migrate::MigrateDatabase, postgres::PgConnectOptions};

use crate::config::{DatabaseUrl, Environment};

pub type Backend = sqlx::Postgres;

pub fn connect_options(url: &DatabaseUrl) -> Result<PgConnectOptions, sqlx::Error> {
    PgConnectOptions::from_str(url.expose())
}

/// Creates the database on a developer's first start. Production databases
/// are provisioned (with their owner and grants) outside the service.
pub async fn prepare(url: &DatabaseUrl, env: Environment) -> anyhow::Result<()> {
    if env == Environment::Development && !Backend::database_exists(url.expose()).await? {
        Backend::create_database(url.expose())
            .await
            .with_context(|| format!("creating the database at {}", url.redacted()))?;
        tracing::info!(database = %url.redacted(), "created the development database");
    }
    Ok(())
}
