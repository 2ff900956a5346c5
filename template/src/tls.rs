//! TLS termination with rustls: TLS 1.2 and 1.3 only (rustls implements
//! nothing older), ALPN for HTTP/2 and HTTP/1.1, and the self-signed
//! certificate that development generates when none is configured.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use time::OffsetDateTime;

use crate::config::{Environment, TlsConfig};

/// The names a development certificate is valid for.
const DEV_CERT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The rustls configuration for the HTTPS listener.
///
/// Production must name its certificate; only development falls back to the
/// generated one, so a deployment can never serve a key that sits in `data/`.
pub fn server_config(tls: &TlsConfig, env: Environment) -> anyhow::Result<Arc<ServerConfig>> {
    let (cert_path, key_path) = match (&tls.cert_path, &tls.key_path) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ if env == Environment::Development => ensure_dev_certificate(&tls.dev_cert_dir)?,
        _ => bail!("tls.cert_path and tls.key_path are required in production"),
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading certificate chain {}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("reading private key {}", key_path.display()))?;
    if let Some(leaf) = certs.first() {
        let expires = expires_at(leaf)?;
        if expiring_soon(expires, OffsetDateTime::now_utc()) {
            tracing::warn!(
                cert = %cert_path.display(),
                expires = %expires,
                "the TLS certificate expires within 30 days: renew it and send SIGHUP"
            );
        }
    }
    build(certs, key)
}

/// When a certificate is this close to expiry, development renews its own
/// and production warns at every start and reload, well before it lapses.
const RENEW_BEFORE: Duration = Duration::from_hours(30 * 24);

fn expiring_soon(expires: OffsetDateTime, now: OffsetDateTime) -> bool {
    expires - now < RENEW_BEFORE
}

/// When a certificate stops being valid.
fn expires_at(certificate: &CertificateDer<'_>) -> anyhow::Result<OffsetDateTime> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|err| anyhow::anyhow!("parsing the certificate: {err}"))?;
    Ok(parsed.validity().not_after.to_datetime())
}

fn build(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and private key do not form a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How long a development certificate is valid: no longer than a public
/// CA's, so that TLS scanners (`scripts/security-scan`) find nothing to flag.
const DEV_CERT_LIFETIME: Duration = Duration::from_hours(90 * 24);

/// The paths of the development certificate and key, created on first use
/// and kept so that a browser exception survives restarts, until it is
/// missing, expired or expiring soon: then a new one is made.
pub fn ensure_dev_certificate(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let now = OffsetDateTime::now_utc();
    let current = CertificateDer::from_pem_file(&cert_path).ok().and_then(|cert| expires_at(&cert).ok());
    if key_path.exists() && current.is_some_and(|expires| !expiring_soon(expires, now)) {
        return Ok((cert_path, key_path));
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let names: Vec<String> = DEV_CERT_NAMES.iter().map(|&name| name.to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names)?;
    // A day's slack for clocks behind this one.
    params.not_before = now - Duration::from_hours(24);
    params.not_after = now + DEV_CERT_LIFETIME;
    let signing_key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&signing_key)?;
    write_private(&key_path, signing_key.serialize_pem().as_bytes())
        .with_context(|| format!("writing {}", key_path.display()))?;
    fs::write(&cert_path, cert.pem()).with_context(|| format!("writing {}", cert_path.display()))?;
    tracing::warn!(
        cert = %cert_path.display(),
        "generated a self-signed development certificate; clients must trust it explicitly"
    );
    Ok((cert_path, key_path))
}

/// Writes a file only its owner can read, as a private key requires.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_generates_a_certificate_once_and_keeps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = ensure_dev_certificate(dir.path()).expect("generated");
        let first = fs::read(&cert).expect("cert written");
        ensure_dev_certificate(dir.path()).expect("reused");
        assert_eq!(first, fs::read(&cert).expect("cert kept"), "a restart must keep the certificate");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key).expect("key").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the private key must be readable by its owner only");
        }
    }

    #[test]
    fn an_expired_or_expiring_development_certificate_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, _) = ensure_dev_certificate(dir.path()).expect("generated");
        let fresh = CertificateDer::from_pem_file(&cert).expect("PEM");
        let now = OffsetDateTime::now_utc();
        let lifetime = expires_at(&fresh).expect("parses") - now;
        assert!(lifetime <= DEV_CERT_LIFETIME && lifetime + Duration::from_mins(1) > DEV_CERT_LIFETIME);
        for expires in [now - Duration::from_hours(24), now + Duration::from_hours(24)] {
            let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
            params.not_before = now - Duration::from_hours(100 * 24);
            params.not_after = expires;
            let key = rcgen::KeyPair::generate().expect("key");
            let stale = params.self_signed(&key).expect("certificate").pem();
            fs::write(&cert, &stale).expect("write");
            ensure_dev_certificate(dir.path()).expect("renewed");
            let renewed = fs::read_to_string(&cert).expect("cert");
            assert_ne!(renewed, stale, "a certificate expiring at {expires} must be replaced");
        }
    }

    #[test]
    fn certificates_are_renewed_a_month_before_they_lapse() {
        let now = OffsetDateTime::now_utc();
        assert!(expiring_soon(now - Duration::from_hours(1), now), "expired");
        assert!(expiring_soon(now + Duration::from_hours(29 * 24), now));
        assert!(!expiring_soon(now + Duration::from_hours(31 * 24), now));
    }

    #[test]
    fn the_server_offers_http2_and_http1_by_alpn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = TlsConfig { cert_path: None, key_path: None, dev_cert_dir: dir.path().to_owned() };
        let config = server_config(&tls, Environment::Development).expect("config");
        assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn production_requires_a_configured_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = TlsConfig { cert_path: None, key_path: None, dev_cert_dir: dir.path().to_owned() };
        let err = server_config(&tls, Environment::Production).expect_err("no dev cert in production");
        assert!(err.to_string().contains("tls.cert_path"));
        assert!(!dir.path().join("cert.pem").exists(), "production must not generate a certificate");
    }
}
