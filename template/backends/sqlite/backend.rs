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

/// Whether a result code (extended; its low byte is the primary code) says
/// the database cannot do its work right now, not that the query was wrong:
/// still locked after the busy timeout, read-only, an I/O error, out of disk,
/// a file it cannot open.
#[must_use]
pub fn is_outage_code(code: &str) -> bool {
    const BUSY: i32 = 5;
    const READONLY: i32 = 8;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    code.parse::<i32>().is_ok_and(|code| matches!(code & 0xff, BUSY | READONLY | IOERR | FULL | CANTOPEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_code_is_told_from_a_fault() {
        for outage in ["5", "8", "13", "14", "778" /* IOERR_WRITE */, "1032" /* READONLY_DBMOVED */] {
            assert!(is_outage_code(outage), "{outage}");
        }
        for fault in ["1" /* ERROR */, "11" /* CORRUPT */, "2067" /* CONSTRAINT_UNIQUE */, "x"] {
            assert!(!is_outage_code(fault), "{fault}");
        }
    }
}
