//! The connection pool and the migrations. What differs between database
//! backends (the sqlx driver, connection settings, creating the database)
//! lives in `backend`, so the rest of the code names neither.

pub mod audit;
mod backend;
pub mod email_tokens;
pub mod identities;
pub mod mail_outbox;
pub mod notes;
pub mod oidc_logins;
pub mod refresh_tokens;
pub mod users;
pub mod window_counters;

use std::time::Duration;

use anyhow::Context;
pub use backend::{Backend, insecure_transport};
use sqlx::{ConnectOptions, pool::PoolOptions};

use crate::config::Config;

pub type Pool = sqlx::Pool<Backend>;

/// Whether `err` says the database cannot be reached or cannot do its work
/// right now (no connection within the acquire timeout, a connection that
/// broke, a pool shut down, a full disk, a read-only server), rather than
/// that this query or this code is wrong: an outage, which retrying later
/// can cure.
#[must_use]
pub fn is_outage(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            true
        }
        sqlx::Error::Database(err) => err.code().is_some_and(|code| backend::is_outage_code(&code)),
        _ => false,
    }
}

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

/// The readiness probe's own connection to the database, outside the pool:
/// a pool busy with requests must not look like a database that is down,
/// and a database that is down must be noticed without waiting for a pool
/// slot.
pub struct Probe {
    pool: Pool,
    connection: Option<<Backend as sqlx::Database>::Connection>,
}

impl Probe {
    #[must_use]
    pub fn new(pool: Pool) -> Self {
        Self { pool, connection: None }
    }

    /// One round trip within `deadline`, connecting first if the last
    /// probe failed. A closed pool counts as down for good.
    pub async fn ping(&mut self, deadline: Duration) -> bool {
        if self.pool.is_closed() {
            self.connection = None;
            return false;
        }
        let answered = tokio::time::timeout(deadline, async {
            let connection = match &mut self.connection {
                Some(connection) => connection,
                None => self.connection.insert(self.pool.connect_options().connect().await?),
            };
            sqlx::query("SELECT 1").execute(&mut *connection).await.map(drop)
        })
        .await;
        let up = matches!(answered, Ok(Ok(())));
        if !up {
            // A connection that failed or was cut off mid-query is not reused.
            self.connection = None;
        }
        up
    }

    /// Completes when the pool is closed, that is when the service stops.
    pub async fn closed(&self) {
        self.pool.close_event().await;
    }
}
