//! SQLite: one file, in WAL mode so that readers never wait for the writer.

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::config::{DatabaseUrl, Environment};

pub type Backend = sqlx::Sqlite;

pub fn connect_options(url: &DatabaseUrl) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(SqliteConnectOptions::from_str(url.expose())?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL is durable in WAL mode except for the last commits on power loss.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5)))
}

/// Creates the directory that holds the database file; SQLite creates the file.
pub async fn prepare(url: &DatabaseUrl, _env: Environment) -> anyhow::Result<()> {
    let options = connect_options(url)?;
    if let Some(dir) = options.get_filename().parent().filter(|dir| !dir.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// A file on the service's own disk: there is no connection to protect.
#[must_use]
pub fn insecure_transport(_url: &DatabaseUrl) -> Option<&'static str> {
    None
}
