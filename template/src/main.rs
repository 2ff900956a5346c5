//! The service binary: every subcommand lives in the library's `cli` module,
//! so that tests drive exactly the code that runs in production.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    {{crate_name}}::cli::run().await
}
