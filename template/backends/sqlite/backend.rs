//! SQLite: one file, in WAL mode so that readers never wait for the writer.

use std::{
    str::FromStr,
    time::{Duration, Instant},
};

use anyhow::Context;
use sqlx::{
    ConnectOptions, Connection,
    sqlite::{SqliteConnectOptions, SqliteSynchronous},
};

use crate::config::{DatabaseUrl, Environment};

pub type Backend = sqlx::Sqlite;

/// How long `prepare` keeps asking for the switch to WAL mode.
const WAL_SWITCH_WITHIN: Duration = Duration::from_secs(10);

/// The options of every connection. The journal mode is not among them: WAL
/// is a property of the file, set once by `prepare`.
pub fn connect_options(url: &DatabaseUrl) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(SqliteConnectOptions::from_str(url.expose())?
        .create_if_missing(true)
        // NORMAL is durable in WAL mode except for the last commits on power loss.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5)))
}

/// Creates the directory that holds the database file (SQLite creates the
/// file), and puts the database in WAL mode. Switching a database into WAL
/// needs an exclusive lock, and while another connection is writing in the
/// old mode SQLite refuses it at once, busy timeout or not; so it is done
/// here, once, on a connection of its own that asks again until the writer
/// is done, rather than by every new connection of the pool.
pub async fn prepare(url: &DatabaseUrl, _env: Environment) -> anyhow::Result<()> {
    let options = connect_options(url)?;
    if let Some(dir) = options.get_filename().parent().filter(|dir| !dir.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating {}", dir.display()))?;
    }
    // Each attempt waits briefly, so that it never holds its lock long
    // enough to stall the writer it waits for.
    let attempt = options.busy_timeout(Duration::from_millis(100));
    let mut connection = attempt.connect().await.context("opening the database")?;
    let deadline = Instant::now() + WAL_SWITCH_WITHIN;
    loop {
        // An in-memory database answers "memory" and keeps it: nothing to share.
        match sqlx::query("PRAGMA journal_mode = WAL").execute(&mut connection).await {
            Ok(_) => break,
            Err(err) if is_busy(&err) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => return Err(err).context("switching the database to WAL mode"),
        }
    }
    connection.close().await.context("closing the database")?;
    Ok(())
}

/// SQLITE_BUSY, in any of its extended forms.
fn is_busy(err: &sqlx::Error) -> bool {
    const BUSY: i32 = 5;
    let code = |err: &sqlx::Error| err.as_database_error()?.code()?.parse::<i32>().ok();
    code(err).is_some_and(|code| code & 0xff == BUSY)
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
    use sqlx::pool::PoolOptions;

    use super::*;

    /// A database created in the old journal mode (as `sqlx::test` creates
    /// them) while another connection writes to it: the switch to WAL waits
    /// for the writer instead of failing the start with "database is locked".
    #[tokio::test]
    async fn the_switch_to_wal_waits_for_a_writer_in_the_old_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("data.db");
        let url: DatabaseUrl =
            serde_json::from_value(serde_json::json!(format!("sqlite://{}", file.display()))).expect("url");
        let mut writer = SqliteConnectOptions::new()
            .filename(&file)
            .create_if_missing(true)
            .connect()
            .await
            .expect("open");
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut writer).await.expect("create");
        sqlx::query("BEGIN IMMEDIATE").execute(&mut writer).await.expect("begin");
        sqlx::query("INSERT INTO t VALUES (1)").execute(&mut writer).await.expect("insert");
        let done = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            sqlx::query("COMMIT").execute(&mut writer).await.expect("commit");
            writer.close().await.expect("close");
        });
        // What `db::connect` does.
        prepare(&url, Environment::Development).await.expect("prepared");
        let pool = PoolOptions::<Backend>::new().connect_with(connect_options(&url).expect("options")).await;
        let pool = pool.expect("connected");
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&pool).await.expect("mode");
        assert_eq!(mode, "wal");
        done.await.expect("the writer committed");
    }

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
