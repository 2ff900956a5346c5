//! PostgreSQL.

use std::str::FromStr;

use anyhow::Context;
use sqlx::{
    migrate::MigrateDatabase,
    postgres::{PgConnectOptions, PgSslMode},
};

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

/// Why connections to `url` are unfit for production, if they are:
/// anything short of TLS with the server's certificate and host name
/// verified lets someone on the network read or change every query.
#[must_use]
pub fn insecure_transport(url: &DatabaseUrl) -> Option<&'static str> {
    match connect_options(url).map(|options| options.get_ssl_mode()) {
        Ok(PgSslMode::VerifyFull) => None,
        _ => Some(
            "connections must use TLS with the server verified: add sslmode=verify-full (and \
             sslrootcert=...) to the URL, or, on a private network you trust, set \
             database.allow_plaintext_on_private_network = true",
        ),
    }
}

/// Whether an SQLSTATE says the database cannot do its work right now, not
/// that the query was wrong: a broken connection (class 08), out of disk,
/// memory or connections (53), the server shutting down or starting
/// (57P01–57P03), an I/O error (58030), or a read-only server (25006: a
/// replica, as after a failover).
#[must_use]
pub fn is_outage_code(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "58030" | "25006")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_verified_tls_is_a_secure_transport() {
        let url = |text: &str| serde_json::from_value::<DatabaseUrl>(serde_json::json!(text)).expect("url");
        for insecure in [
            "postgres://db.internal/app",
            "postgres://db.internal/app?sslmode=require",
            "postgres://db.internal/app?sslmode=verify-ca",
        ] {
            assert!(insecure_transport(&url(insecure)).is_some(), "{insecure}");
        }
        assert_eq!(insecure_transport(&url("postgres://db.internal/app?sslmode=verify-full")), None);
    }

    #[test]
    fn an_outage_code_is_told_from_a_fault() {
        for outage in ["08006", "53100" /* disk_full */, "53300", "57P01", "58030", "25006"] {
            assert!(is_outage_code(outage), "{outage}");
        }
        for fault in
            ["23505" /* unique_violation */, "42P01" /* undefined_table */, "22021", "40001"]
        {
            assert!(!is_outage_code(fault), "{fault}");
        }
    }
}
