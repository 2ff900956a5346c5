//! Black-box tests of the real application: in process through its router,
//! over a real TLS socket, and as the compiled binary. Each test gets a fresh
//! database from `#[sqlx::test]` (a new SQLite file, or a new PostgreSQL
//! database on the server named by `DATABASE_URL`).

extern crate {{crate_name}} as app;

/// The compiled service binary, for tests of the command line.
const BIN: &str = env!("CARGO_BIN_EXE_{{project-name}}");

mod accounts;
mod admin;
mod audit;
mod authz;
mod caches;
mod cli;
mod email;
mod encryption;
mod errors;
mod headers;
mod health;
mod helpers;
mod limits;
mod logging;
mod maintenance;
mod notes;
mod oidc;
mod openapi;
mod properties;
mod rate_limits;
mod readme;
mod sessions;
mod smtp;
mod tls;
mod tokens;
