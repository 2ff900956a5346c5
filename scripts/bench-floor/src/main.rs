//! The floor: `GET /` answers `{"status":"ok"}` over HTTPS, nothing more.
//! Usage: bench-floor <addr> <cert.pem> <key.pem>

use std::net::SocketAddr;

use axum::{Json, Router, routing::get};
use axum_server::tls_rustls::RustlsConfig;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(cert), Some(key)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: bench-floor <addr> <cert.pem> <key.pem>".into());
    };
    let addr: SocketAddr = addr.parse()?;
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .map_err(|_| "a crypto provider was installed already")?;
    let tls = RustlsConfig::from_pem_file(cert, key).await?;
    let app = Router::new().route("/", get(|| async { Json(serde_json::json!({"status": "ok"})) }));
    axum_server::bind_rustls(addr, tls).serve(app.into_make_service()).await?;
    Ok(())
}
