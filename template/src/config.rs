//! Typed configuration, layered and validated once at start-up.
//!
//! Layers, later ones win: `config/default.toml` (compiled in, so the binary
//! runs from any directory), an optional file given with `--config`, then
//! `APP_<SECTION>__<KEY>` environment variables, or `APP_<SECTION>__<KEY>_FILE`
//! naming a file that holds the value, as container platforms mount secrets.
//! Unknown keys are errors: a mistyped security setting must fail loudly,
//! never be silently ignored.

use std::{
    collections::BTreeMap,
    fmt,
    net::{IpAddr, SocketAddr},
    ops::RangeInclusive,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    authz::Role,
    domain::password,
    encryption::{DataKeys, EncryptionError},
    rate_limit::Quota,
};

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value of the wrong type, or an unknown key, named with the variable
    /// or file that set it.
    #[error("invalid configuration {0}")]
    Load(String),
    #[error("invalid configuration `{key}`: {problem}")]
    Invalid { key: &'static str, problem: String },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// The default, so that a laptop needs no settings.
    #[default]
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// development (the default) or production; see `Environment`.
    #[serde(default)]
    pub env: Environment,
    /// Whether a file or variable set `env` (the defaults do not): only a
    /// chosen development mode may listen beyond loopback.
    #[serde(skip)]
    pub env_chosen: bool,
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub oidc: OidcConfig,
    pub mail: MailConfig,
    pub rate_limit: RateLimitConfig,
    pub audit: AuditConfig,
    pub log: LogConfig,
    pub docs: DocsConfig,
    pub cors: CorsConfig,
    pub encryption: EncryptionConfig,
}

/// Durations are written in whole seconds (keys ending in `_secs`) or
/// milliseconds (`_ms`) and read into `Duration`s here, once, so no other
/// code converts units.
pub(crate) mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_secs())
    }
}

mod milliseconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The HTTPS listener.
    pub https_addr: SocketAddr,
    /// The optional plain-HTTP listener, which only redirects.
    #[serde(default)]
    pub http_redirect_addr: Option<SocketAddr>,
    /// What clients call this service: the target of redirects, the `iss`
    /// of its tokens, the base of links it sends.
    pub public_url: Url,
    /// Deadline of a whole request (408 after it).
    #[serde(rename = "request_timeout_secs", with = "seconds")]
    pub request_timeout: Duration,
    /// Largest request body anywhere (413 over it); routes may set less.
    pub body_limit_bytes: usize,
    /// Requests handled at once; more are shed with 503 (never the probes).
    pub max_concurrent_requests: usize,
    /// How long shutdown waits for requests in flight.
    #[serde(rename = "shutdown_grace_secs", with = "seconds")]
    pub shutdown_grace: Duration,
    /// How long a new connection may take to finish its TLS handshake.
    #[serde(rename = "tls_handshake_timeout_secs", with = "seconds")]
    pub tls_handshake_timeout: Duration,
    /// How long a connection may wait before its first request.
    #[serde(rename = "first_request_timeout_secs", with = "seconds")]
    pub first_request_timeout: Duration,
    /// How long a client may take to send the headers of a request.
    #[serde(rename = "header_read_timeout_secs", with = "seconds")]
    pub header_read_timeout: Duration,
    /// How long a request body may pause between two chunks.
    #[serde(rename = "body_idle_timeout_secs", with = "seconds")]
    pub body_idle_timeout: Duration,
    /// Connections open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// HTTP/2: streams one connection may have open at once ...
    pub http2_max_concurrent_streams: u32,
    /// ... streams the client may reset before the service takes them up
    /// (the rapid-reset attack) ...
    pub http2_max_pending_accept_reset_streams: usize,
    /// ... and streams the service may have to reset for the client's
    /// protocol errors (the "made you reset" attack); over either, the
    /// connection is closed.
    pub http2_max_local_error_reset_streams: usize,
    /// Reverse proxies whose forwarding header names the client; from any
    /// other peer the header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// The header the trusted proxies set: `x-forwarded-for` or `forwarded`.
    pub client_address_header: ClientAddressHeader,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAddressHeader {
    XForwardedFor,
    Forwarded,
}

impl ServerConfig {
    /// Whether `peer` is one of `trusted_proxies`.
    #[must_use]
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Public routes, per client address.
    pub anonymous: Quota,
    /// Authenticated routes, per principal.
    pub authenticated: Quota,
    /// Login, refresh, password and OpenID Connect routes: per client
    /// address and per account.
    pub credentials: Quota,
    /// Routes that send mail: per client address and per account.
    pub mail: Quota,
    /// Keys the in-memory store holds at most.
    pub max_keys: usize,
    /// Unset, each instance counts alone, in memory; set, every instance
    /// that shares the Redis enforces one limit.
    #[serde(default)]
    pub redis_url: Option<Secret>,
    /// A CA certificate (PEM) that verifies a `rediss://` server instead of
    /// the system's roots, for a Redis with a private CA.
    #[serde(default)]
    pub redis_ca_cert: Option<PathBuf>,
    /// Prefix of this service's keys in Redis.
    pub redis_key_prefix: String,
    /// How long a request may wait for Redis.
    #[serde(rename = "redis_timeout_ms", with = "milliseconds")]
    pub redis_timeout: Duration,
    /// What to do while Redis cannot answer.
    pub on_redis_failure: OnRedisFailure,
    /// A failing Redis is logged at most once per this interval.
    #[serde(rename = "failure_log_interval_secs", with = "seconds")]
    pub failure_log_interval: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Events that may wait for the database writer; more are dropped,
    /// counted and logged (the log line on the `audit` target stays).
    pub queue_capacity: usize,
    /// Denials and rate-limit events are written once per window for each
    /// source and actor, with a count.
    #[serde(rename = "flood_window_secs", with = "seconds")]
    pub flood_window: Duration,
    /// Sources counted apart in one window; the rest share one row.
    pub max_flood_sources: usize,
    /// `prune-audit` removes the events older than this many days.
    pub retention_days: u32,
}

impl AuditConfig {
    #[must_use]
    pub fn retention(&self) -> Duration {
        Duration::from_hours(u64::from(self.retention_days) * 24)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRedisFailure {
    /// Count in this instance's memory meanwhile: each instance enforces
    /// the limit alone, so the service as a whole lets more through.
    Memory,
    /// Refuse limited requests (503) meanwhile.
    Deny,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; required in production.
    #[serde(default)]
    pub cert_path: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[serde(default)]
    pub key_path: Option<PathBuf>,
    /// Where development keeps the certificate it generates.
    pub dev_cert_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    pub max_connections: u32,
    /// How long a request waits for a free connection.
    #[serde(rename = "acquire_timeout_ms", with = "milliseconds")]
    pub acquire_timeout: Duration,
    /// PostgreSQL: lets production connect without verified TLS.
    #[serde(default)]
    pub allow_plaintext_on_private_network: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The `aud` access tokens must carry; unset, the issuer (public URL).
    #[serde(default)]
    pub audience: Option<String>,
    /// Whether an account must confirm its address before using the API
    /// beyond its own account and session routes.
    pub require_verified_email: bool,
    /// Lifetime of access tokens.
    #[serde(rename = "access_token_ttl_secs", with = "seconds")]
    pub access_token_ttl: Duration,
    /// A session unused this long ends.
    #[serde(rename = "refresh_idle_timeout_secs", with = "seconds")]
    pub refresh_idle_timeout: Duration,
    /// A session ends this long after its login, however active.
    #[serde(rename = "refresh_lifetime_secs", with = "seconds")]
    pub refresh_lifetime: Duration,
    /// The directory of the token signing keys.
    pub keys_dir: PathBuf,
    /// Shortest new password.
    pub password_min_length: usize,
    /// Password hashes computed at once; unset, one per CPU.
    #[serde(default)]
    pub max_concurrent_hashes: Option<usize>,
    /// Password checks that may wait for a hash; unset, four per hash.
    #[serde(default)]
    pub max_queued_hashes: Option<usize>,
    /// Checks of one account's password per client address and window.
    pub throttle_per_address: u32,
    /// Checks of one account's password from all addresses per window.
    pub throttle_per_account: u32,
    /// The throttle's window.
    #[serde(rename = "throttle_window_secs", with = "seconds")]
    pub throttle_window: Duration,
    /// How long an account's state may be reused between requests; a
    /// change elsewhere shows after at most this long (0: never reused).
    #[serde(rename = "account_cache_ttl_ms", with = "milliseconds")]
    pub account_cache_ttl: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider; unset, OpenID Connect is off.
    #[serde(default)]
    pub issuer: Option<Url>,
    /// This service's client at the provider, for login.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Scopes asked for at login (`openid` among them).
    pub scopes: Vec<String>,
    /// Signature algorithms accepted from the provider (never HMAC).
    pub algorithms: Vec<String>,
    /// The claim of provider access tokens that lists role names ...
    pub roles_claim: String,
    /// ... and which of this service's roles each name grants.
    pub role_map: BTreeMap<String, Role>,
    /// Logins that may wait for their callback at once.
    pub max_pending_logins: u32,
    /// Calls to the provider give up after these.
    #[serde(rename = "connect_timeout_secs", with = "seconds")]
    pub connect_timeout: Duration,
    #[serde(rename = "request_timeout_secs", with = "seconds")]
    pub request_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// How messages leave: `outbox` (development) or `smtp`.
    pub transport: MailTransport,
    /// Where the outbox transport writes one `.eml` file per message.
    pub outbox_dir: PathBuf,
    /// The sender, e.g. "Example <no-reply@example.com>".
    pub from: String,
    /// The front end that completes the flows; unset, server.public_url.
    #[serde(default)]
    pub link_base_url: Option<Url>,
    /// Messages one address gets per hour at most, whatever the requests.
    pub max_per_address_per_hour: u32,
    /// Messages that may wait for the mail server in the outbox; more are
    /// dropped.
    pub queue_capacity: usize,
    pub smtp: SmtpConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    Outbox,
    Smtp,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `starttls` (port 587), `implicit` (port 465), or `none`: only to a
    /// relay on loopback in development.
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// A CA certificate (PEM) to trust for the relay besides the system's.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// How long one delivery attempt may take.
    #[serde(rename = "timeout_secs", with = "seconds")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Implicit,
    None,
}

/// A secret setting (a client secret, …): usable through `expose`, never
/// printed by `Debug` or `check-config`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("REDACTED")
    }
}

/// Shortest secret production accepts: shorter ones are usually chosen by a
/// person, and sixteen random characters are beyond guessing online.
const MIN_SECRET_CHARS: usize = 16;

/// Words of the placeholders that examples and documentation use for
/// secrets, which are the first values an attacker tries.
const PLACEHOLDER_WORDS: [&str; 6] =
    ["changeme", "replaceme", "example", "placeholder", "secret", "password"];

/// Whether a secret is too short, made of one repeated character, or a
/// placeholder.
fn is_guessable(secret: &str) -> bool {
    let letters: String =
        secret.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    secret.chars().count() < MIN_SECRET_CHARS
        || secret.chars().all(|c| secret.starts_with(c))
        || PLACEHOLDER_WORDS.iter().any(|word| letters.contains(word))
}

/// Whether `url` names this machine, where no network carries its traffic.
fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        // Hosts of non-special schemes such as redis:// stay text, addresses too.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The key directory development uses; production must mount its own keys.
const DEV_KEYS_DIR: &str = "data/jwt";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `tracing` filter directives, e.g. "info,sqlx=warn".
    pub filter: String,
    /// JSON lines or readable lines; unset, by environment.
    #[serde(default)]
    pub format: Option<LogFormat>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DocsConfig {
    /// Serve Swagger UI and the OpenAPI document; unset, by environment.
    #[serde(default)]
    pub expose: Option<bool>,
}

/// The keys of field-level encryption at rest (see `encryption`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// `id:base64` entries of 32 random bytes each, the first sealing new
    /// values; unset: the public development key, which production refuses.
    #[serde(default)]
    pub keys: Option<Secret>,
}

impl EncryptionConfig {
    /// The configured keys, or the development key when none are.
    pub fn data_keys(&self) -> Result<DataKeys, EncryptionError> {
        self.keys.as_ref().map_or_else(|| Ok(DataKeys::development()), |keys| DataKeys::parse(keys.expose()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins that may call from a browser, exactly as `scheme://host[:port]`.
    pub allowed_origins: Vec<String>,
}

/// The database URL. It may carry a password, so it never prints whole:
/// `Debug` and `Serialize` (used by `check-config`) show a redacted copy.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

/// A setting that is fine on a laptop and unsafe in production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostureProblem {
    pub key: &'static str,
    pub problem: &'static str,
}

const ENV_PREFIX: &str = "APP_";
const FILE_SUFFIX: &str = "_file";

/// The settings given as `APP_…_FILE=<path>`: each file's content, without
/// its final line break, as a string under the key the variable names (meant
/// for secrets: a password of digits stays a string). Setting both a
/// variable and its `_FILE` form is refused rather than resolved silently.
fn settings_from_files(
    variables: impl Iterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let variables: BTreeMap<String, String> = variables.collect();
    let mut settings = Vec::new();
    for (name, path) in &variables {
        let Some(key) = name
            .strip_prefix(ENV_PREFIX)
            .and_then(|rest| rest.strip_suffix(&FILE_SUFFIX.to_uppercase()))
            .filter(|key| !key.is_empty())
        else {
            continue;
        };
        let direct = &name[..name.len() - FILE_SUFFIX.len()];
        if variables.contains_key(direct) {
            return Err(ConfigError::Load(format!("from {name}: {direct} is set too; set one of them")));
        }
        let content = std::fs::read_to_string(path)
            .map_err(|err| ConfigError::Load(format!("from {name}: cannot read {path}: {err}")))?;
        let value = content.strip_suffix('\n').map_or(content.as_str(), |value| value.trim_end_matches('\r'));
        settings.push((key.to_lowercase().replace("__", "."), value.to_owned()));
    }
    Ok(settings)
}

impl Config {
    /// Loads every layer (see the module docs) and validates the result.
    pub fn load(extra_file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Self::defaults();
        if let Some(path) = extra_file {
            figment = figment.merge(Toml::file_exact(path));
        }
        let variables = Env::prefixed(ENV_PREFIX)
            .filter(|key| !key.as_str().to_ascii_lowercase().ends_with(FILE_SUFFIX))
            .split("__");
        let unicode = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)));
        let figment = settings_from_files(unicode)?
            .into_iter()
            .fold(figment.merge(variables), |figment, (key, value)| figment.merge((key, value)));
        Self::from_figment(&figment)
    }

    /// The compiled-in defaults alone; tests layer their overrides on top.
    #[must_use]
    pub fn defaults() -> Figment {
        Figment::from(Toml::string(DEFAULTS))
    }

    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let mut config: Self = figment.extract().map_err(|err| ConfigError::Load(describe(err)))?;
        config.env_chosen = figment.contains("env");
        config.validate()?;
        Ok(config)
    }

    #[must_use]
    pub fn log_format(&self) -> LogFormat {
        self.log.format.unwrap_or(match self.env {
            Environment::Development => LogFormat::Pretty,
            Environment::Production => LogFormat::Json,
        })
    }

    /// Whether `/docs` and `/openapi.json` are served: in development unless
    /// turned off, in production only when the configuration says so.
    #[must_use]
    pub fn docs_exposed(&self) -> bool {
        self.docs.expose.unwrap_or(self.env == Environment::Development)
    }

    /// Everything that makes this configuration unfit for production. The
    /// server refuses to start in production while this list is not empty.
    #[must_use]
    pub fn production_problems(&self) -> Vec<PostureProblem> {
        let mut problems = Vec::new();
        if self.tls.cert_path.is_none() {
            problems.push(PostureProblem {
                key: "tls.cert_path",
                problem: "no certificate configured; only development generates a self-signed one",
            });
        }
        if same_directory(&self.auth.keys_dir, Path::new(DEV_KEYS_DIR)) {
            problems.push(PostureProblem {
                key: "auth.keys_dir",
                problem: "points at the development key directory; mount production keys elsewhere",
            });
        }
        if self.server.public_url.scheme() != "https" {
            problems.push(PostureProblem {
                key: "server.public_url",
                problem: "must be https, or redirects would send clients to plain HTTP",
            });
        }
        if self.cors.allowed_origins.iter().any(|origin| !origin.starts_with("https://")) {
            problems.push(PostureProblem {
                key: "cors.allowed_origins",
                problem: "every allowed origin must be https; a plain-HTTP page can be tampered with in transit",
            });
        }
        if !self.database.allow_plaintext_on_private_network
            && let Some(problem) = crate::db::insecure_transport(&self.database.url)
        {
            problems.push(PostureProblem { key: "database.url", problem });
        }
        if self.mail.transport != MailTransport::Smtp || self.mail.smtp.tls == SmtpTls::None {
            problems.push(PostureProblem {
                key: "mail.transport",
                problem: "must be smtp over TLS (mail.smtp.tls = starttls or implicit): the outbox and \
                    plain SMTP are for development",
            });
        }
        if let Some(url) = &self.rate_limit.redis_url
            && let Ok(url) = Url::parse(url.expose())
            && !is_loopback_host(&url)
        {
            if url.scheme() != "rediss" {
                problems.push(PostureProblem {
                    key: "rate_limit.redis_url",
                    problem: "a Redis beyond loopback needs TLS (rediss://), or its password and every \
                        client's key cross the network in the clear",
                });
            }
            if url.password().is_none() {
                problems.push(PostureProblem {
                    key: "rate_limit.redis_url",
                    problem: "a Redis beyond loopback needs a password (rediss://:password@host), or \
                        anyone on its network can reset every limit",
                });
            }
        }
        problems.extend(self.secret_problems());
        let most_verbose = tracing_subscriber::EnvFilter::try_new(&self.log.filter)
            .ok()
            .and_then(|filter| filter.max_level_hint());
        if most_verbose.is_some_and(|level| level > tracing::level_filters::LevelFilter::INFO) {
            problems.push(PostureProblem {
                key: "log.filter",
                problem: "debug and trace lines carry request internals and flood the logs: info or \
                    quieter in production",
            });
        }
        problems
    }

    /// Secrets that production needs and lacks, or that are guessable: too
    /// short, a placeholder, or the public development key.
    fn secret_problems(&self) -> Vec<PostureProblem> {
        let mut problems = Vec::new();
        match &self.encryption.keys {
            None => problems.push(PostureProblem {
                key: "encryption.keys",
                problem: "missing: without keys, confidential data is sealed with the public development key",
            }),
            Some(keys) if DataKeys::includes_development_key(keys.expose()) => {
                problems.push(PostureProblem {
                    key: "encryption.keys",
                    problem: "includes the public development key, which anyone can read in the source",
                });
            }
            Some(_) => {}
        }
        // As written in the URL, percent-encoded: longer than the password
        // only where it holds characters beyond guessing anyway.
        let redis_password = self
            .rate_limit
            .redis_url
            .as_ref()
            .and_then(|url| Url::parse(url.expose()).ok()?.password().map(str::to_owned));
        let required = [
            (
                "oidc.client_secret",
                self.oidc.client_id.is_some(),
                self.oidc.client_secret.as_ref().map(Secret::expose),
            ),
            (
                "mail.smtp.password",
                self.mail.smtp.username.is_some(),
                self.mail.smtp.password.as_ref().map(Secret::expose),
            ),
            ("rate_limit.redis_url", false, redis_password.as_deref()),
        ];
        for (key, needed, secret) in required {
            let problem = match secret {
                None if needed => "missing",
                Some(secret) if is_guessable(secret) => {
                    "guessable: at least 16 characters, random, not a placeholder from an example"
                }
                _ => continue,
            };
            problems.push(PostureProblem { key, problem });
        }
        problems
    }

    /// The listener that development mode exposes beyond loopback when
    /// nobody chose development mode: most likely a deployment that forgot
    /// `APP_ENV=production`.
    #[must_use]
    pub fn unchosen_development_exposure(&self) -> Option<SocketAddr> {
        if self.env != Environment::Development || self.env_chosen {
            return None;
        }
        [Some(self.server.https_addr), self.server.http_redirect_addr]
            .into_iter()
            .flatten()
            .find(|addr| !addr.ip().is_loopback())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        let url = &server.public_url;
        check(
            matches!(url.scheme(), "https" | "http")
                && url.has_host()
                && url.path() == "/"
                && url.query().is_none()
                && url.username().is_empty(),
            "server.public_url",
            "must be an origin such as https://api.example.com, without path or credentials",
        )?;
        check_secs(server.request_timeout, 1..=300, "server.request_timeout_secs")?;
        check(
            (1024..=16 * 1024 * 1024).contains(&server.body_limit_bytes),
            "server.body_limit_bytes",
            "must be between 1 KiB and 16 MiB",
        )?;
        check(server.max_concurrent_requests >= 1, "server.max_concurrent_requests", "must be at least 1")?;
        check_secs(server.shutdown_grace, 0..=300, "server.shutdown_grace_secs")?;
        check_secs(server.tls_handshake_timeout, 1..=60, "server.tls_handshake_timeout_secs")?;
        check_secs(server.first_request_timeout, 1..=60, "server.first_request_timeout_secs")?;
        check_secs(server.header_read_timeout, 1..=60, "server.header_read_timeout_secs")?;
        check_secs(server.body_idle_timeout, 1..=60, "server.body_idle_timeout_secs")?;
        check(server.max_connections >= 1, "server.max_connections", "must be at least 1")?;
        check(
            server.http2_max_concurrent_streams >= 1,
            "server.http2_max_concurrent_streams",
            "must be at least 1",
        )?;
        self.validate_rate_limit()?;
        let audit = &self.audit;
        check(audit.queue_capacity >= 1, "audit.queue_capacity", "must be at least 1")?;
        check_secs(audit.flood_window, 1..=3600, "audit.flood_window_secs")?;
        check(audit.max_flood_sources >= 1, "audit.max_flood_sources", "must be at least 1")?;
        check(audit.retention_days >= 1, "audit.retention_days", "must be at least 1")?;
        check_secs(self.oidc.connect_timeout, 1..=60, "oidc.connect_timeout_secs")?;
        check_secs(self.oidc.request_timeout, 1..=60, "oidc.request_timeout_secs")?;
        check(
            self.tls.cert_path.is_some() == self.tls.key_path.is_some(),
            "tls.key_path",
            "set both tls.cert_path and tls.key_path, or neither",
        )?;
        check(self.database.max_connections >= 1, "database.max_connections", "must be at least 1")?;
        check(
            (50..=60_000).contains(&self.database.acquire_timeout.as_millis()),
            "database.acquire_timeout_ms",
            "must be between 50 and 60000",
        )?;
        let auth = &self.auth;
        // Services that only verify the signature see a revocation when the
        // token expires: keep tokens short.
        check_secs(auth.access_token_ttl, 60..=3600, "auth.access_token_ttl_secs")?;
        check_secs(auth.refresh_lifetime, 1..=365 * 24 * 3600, "auth.refresh_lifetime_secs")?;
        check(
            auth.refresh_idle_timeout <= auth.refresh_lifetime,
            "auth.refresh_idle_timeout_secs",
            "must be at most auth.refresh_lifetime_secs",
        )?;
        check_secs(auth.refresh_idle_timeout, 1..=365 * 24 * 3600, "auth.refresh_idle_timeout_secs")?;
        let (shortest, longest) = (password::MIN_POLICY_CHARS, password::MAX_CHARS);
        check(
            (shortest..=longest).contains(&auth.password_min_length),
            "auth.password_min_length",
            &format!("must be between {shortest} and {longest}"),
        )?;
        check(auth.max_concurrent_hashes != Some(0), "auth.max_concurrent_hashes", "must be at least 1")?;
        check(auth.max_queued_hashes != Some(0), "auth.max_queued_hashes", "must be at least 1")?;
        check(auth.throttle_per_address >= 1, "auth.throttle_per_address", "must be at least 1")?;
        check(
            auth.throttle_per_account >= auth.throttle_per_address,
            "auth.throttle_per_account",
            "must be at least auth.throttle_per_address, or one address could lock the account",
        )?;
        check_secs(auth.throttle_window, 1..=86_400, "auth.throttle_window_secs")?;
        check(
            auth.account_cache_ttl <= Duration::from_secs(1),
            "auth.account_cache_ttl_ms",
            "must be at most 1000: other instances must see a change within a second",
        )?;
        self.validate_oidc()?;
        self.validate_mail()?;
        if let Err(err) = self.encryption.data_keys() {
            return Err(ConfigError::Invalid { key: "encryption.keys", problem: err.to_string() });
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(ConfigError::Invalid { key: "log.filter", problem: err.to_string() });
        }
        for origin in &self.cors.allowed_origins {
            let canonical = Url::parse(origin)
                .ok()
                .filter(|url| matches!(url.scheme(), "https" | "http"))
                .map(|url| url.origin().ascii_serialization());
            if canonical.as_deref() != Some(origin.as_str()) {
                return Err(ConfigError::Invalid {
                    key: "cors.allowed_origins",
                    problem: format!(
                        "{origin:?} is not an origin; write scheme://host[:port] without path, as in \"https://app.example.com\""
                    ),
                });
            }
        }
        Ok(())
    }

    fn validate_rate_limit(&self) -> Result<(), ConfigError> {
        let limits = &self.rate_limit;
        for (key, quota) in [
            ("rate_limit.anonymous", limits.anonymous),
            ("rate_limit.authenticated", limits.authenticated),
            ("rate_limit.credentials", limits.credentials),
            ("rate_limit.mail", limits.mail),
        ] {
            check(
                quota.requests >= 1 && (1..=86_400).contains(&quota.window.as_secs()),
                key,
                "needs requests >= 1 and window_secs between 1 and 86400",
            )?;
        }
        check(limits.max_keys >= 1_000, "rate_limit.max_keys", "must be at least 1000")?;
        check(
            (1..=1_000).contains(&limits.redis_timeout.as_millis()),
            "rate_limit.redis_timeout_ms",
            "must be between 1 and 1000: a request waits this long at most",
        )?;
        if let Some(url) = &limits.redis_url {
            check(
                Url::parse(url.expose()).is_ok_and(|url| matches!(url.scheme(), "redis" | "rediss")),
                "rate_limit.redis_url",
                "must be a redis:// or, over TLS, a rediss:// URL",
            )?;
        }
        check_secs(limits.failure_log_interval, 1..=3600, "rate_limit.failure_log_interval_secs")
    }

    fn validate_oidc(&self) -> Result<(), ConfigError> {
        let oidc = &self.oidc;
        let Some(issuer) = &oidc.issuer else {
            return check(oidc.client_id.is_none(), "oidc.client_id", "needs oidc.issuer");
        };
        let loopback = matches!(issuer.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        check(
            issuer.scheme() == "https"
                || (issuer.scheme() == "http" && loopback && self.env == Environment::Development),
            "oidc.issuer",
            "must be https (http only for a loopback provider in development)",
        )?;
        for name in &oidc.algorithms {
            let known = name.parse::<jsonwebtoken::Algorithm>().is_ok_and(|alg| {
                !matches!(
                    alg,
                    jsonwebtoken::Algorithm::HS256
                        | jsonwebtoken::Algorithm::HS384
                        | jsonwebtoken::Algorithm::HS512
                )
            });
            check(known, "oidc.algorithms", "lists an unknown or symmetric (HS*) algorithm")?;
        }
        check(!oidc.algorithms.is_empty(), "oidc.algorithms", "must not be empty")?;
        check(oidc.max_pending_logins >= 1, "oidc.max_pending_logins", "must be at least 1")?;
        check(
            oidc.client_id.is_none() || oidc.scopes.iter().any(|scope| scope == "openid"),
            "oidc.scopes",
            "must include openid for login",
        )
    }

    fn validate_mail(&self) -> Result<(), ConfigError> {
        let mail = &self.mail;
        check(
            mail.from.parse::<lettre::message::Mailbox>().is_ok(),
            "mail.from",
            "must be an address, optionally with a name: \"Example <no-reply@example.com>\"",
        )?;
        check(mail.max_per_address_per_hour >= 1, "mail.max_per_address_per_hour", "must be at least 1")?;
        check(mail.queue_capacity >= 1, "mail.queue_capacity", "must be at least 1")?;
        check_secs(mail.smtp.timeout, 1..=120, "mail.smtp.timeout_secs")?;
        if let Some(base) = &mail.link_base_url {
            check(
                matches!(base.scheme(), "https" | "http")
                    && base.query().is_none()
                    && base.fragment().is_none(),
                "mail.link_base_url",
                "must be an http(s) URL without query or fragment",
            )?;
        }
        let loopback = matches!(mail.smtp.host.as_str(), "127.0.0.1" | "localhost" | "::1");
        check(
            mail.smtp.tls != SmtpTls::None || (loopback && self.env == Environment::Development),
            "mail.smtp.tls",
            "may be none only for a relay on loopback in development; credentials and links would cross the network in the clear",
        )
    }

    /// The `iss` of this service's tokens: its public URL, without the
    /// trailing slash.
    #[must_use]
    pub fn issuer(&self) -> String {
        self.server.public_url.as_str().trim_end_matches('/').to_owned()
    }

    /// The `aud` every access token must carry to be accepted here.
    #[must_use]
    pub fn audience(&self) -> String {
        self.auth.audience.clone().unwrap_or_else(|| self.issuer())
    }
}

impl DatabaseUrl {
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password and any password-like query parameter hidden.
    #[must_use]
    pub fn redacted(&self) -> String {
        let Ok(mut url) = Url::parse(&self.0) else {
            return "<unparseable URL hidden>".to_owned();
        };
        if url.password().is_some() {
            // Only fails for URLs that cannot carry a password at all.
            let _ = url.set_password(Some("REDACTED"));
        }
        if url.query().is_some() {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(key, value)| {
                    let hidden = key.to_ascii_lowercase().contains("password");
                    let value = if hidden { "REDACTED".into() } else { value };
                    (key.into_owned(), value.into_owned())
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        url.to_string()
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Development => "development",
            Self::Production => "production",
        })
    }
}

/// Figment shows environment keys in a form nobody typed (`SERVER.HTTPS_ADDR`
/// in "`APP_` environment variable(s)"); this names the key and the exact
/// variable or file that set it.
fn describe(error: figment::Error) -> String {
    let problems: Vec<String> = error
        .into_iter()
        .map(|error| {
            let mut path = error.path.clone();
            if let figment::error::Kind::UnknownField(field, _) = &error.kind
                && path.last() != Some(field)
            {
                path.push(field.clone());
            }
            let key = path.join(".");
            let origin = match &error.metadata {
                Some(meta) if meta.name.contains("environment") => {
                    format!("environment variable APP_{}", key.to_uppercase().replace('.', "__"))
                }
                Some(meta) => match &meta.source {
                    Some(figment::Source::File(file)) => format!("file {}", file.display()),
                    _ => "built-in defaults".to_owned(),
                },
                None => "configuration".to_owned(),
            };
            format!("`{key}` (set by {origin}): {}", error.kind)
        })
        .collect();
    problems.join("; ")
}

/// Whether two paths name the same directory, however they are written
/// (`./data/jwt`, `data/jwt/`, or the absolute path): compared lexically,
/// relative to the working directory, since neither need exist yet.
fn same_directory(a: &Path, b: &Path) -> bool {
    fn normalized(path: &Path) -> PathBuf {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let mut parts = PathBuf::new();
        for component in absolute.components() {
            match component {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        parts
    }
    normalized(a) == normalized(b)
}

/// A duration setting within its bounds (in seconds, as it is written).
fn check_secs(duration: Duration, bounds: RangeInclusive<u64>, key: &'static str) -> Result<(), ConfigError> {
    let problem = format!("must be between {} and {} seconds", bounds.start(), bounds.end());
    check(bounds.contains(&duration.as_secs()), key, &problem)
}

fn check(ok: bool, key: &'static str, problem: &str) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { Err(ConfigError::Invalid { key, problem: problem.to_owned() }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: &str, value: impl Serialize) -> Result<Config, ConfigError> {
        Config::from_figment(&Config::defaults().merge((key, value)))
    }

    #[test]
    fn defaults_are_valid_development_settings() {
        let config = Config::from_figment(&Config::defaults()).expect("defaults load");
        assert_eq!(config.env, Environment::Development);
        assert_eq!(config.log_format(), LogFormat::Pretty);
        assert!(config.cors.allowed_origins.is_empty());
    }

    #[test]
    fn docs_are_served_in_production_only_when_configured() {
        assert!(Config::from_figment(&Config::defaults()).expect("loads").docs_exposed());
        assert!(!with("env", "production").expect("loads").docs_exposed());
        let chosen = Config::from_figment(
            &Config::defaults().merge(("env", "production")).merge(("docs.expose", true)),
        );
        assert!(chosen.expect("loads").docs_exposed());
        assert!(!with("docs.expose", false).expect("loads").docs_exposed());
    }

    #[test]
    fn defaults_are_not_fit_for_production() {
        let config = with("env", "production").expect("loads");
        let keys: Vec<_> = config.production_problems().iter().map(|p| p.key).collect();
        assert_eq!(keys[..2], ["tls.cert_path", "auth.keys_dir"]);
        // The defaults' database connection is fit or not as the backend
        // says (see its tests); the waiver silences exactly that problem.
        let transport = crate::db::insecure_transport(&config.database.url).is_some();
        assert_eq!(keys.contains(&"database.url"), transport, "{keys:?}");
        let waived = Config::from_figment(
            &Config::defaults()
                .merge(("env", "production"))
                .merge(("database.allow_plaintext_on_private_network", true)),
        )
        .expect("loads");
        assert!(!waived.production_problems().iter().any(|p| p.key == "database.url"));
        assert_eq!(config.log_format(), LogFormat::Json);
    }

    #[test]
    fn the_development_key_directory_is_caught_however_it_is_written() {
        let cwd = std::env::current_dir().expect("cwd");
        for spelling in ["data/jwt", "./data/jwt", "data/jwt/", "data//jwt", "data/other/../jwt"] {
            assert!(same_directory(Path::new(spelling), Path::new(DEV_KEYS_DIR)), "{spelling}");
        }
        assert!(same_directory(&cwd.join("data/jwt"), Path::new(DEV_KEYS_DIR)));
        assert!(!same_directory(Path::new("/etc/app/jwt"), Path::new(DEV_KEYS_DIR)));
        let config = Config::from_figment(
            &Config::defaults().merge(("env", "production")).merge(("auth.keys_dir", "./data/jwt/")),
        )
        .expect("loads");
        assert!(config.production_problems().iter().any(|p| p.key == "auth.keys_dir"));
    }

    /// Only the defaults leave `env` unchosen; a listener beyond loopback in
    /// unchosen development mode is reported, a chosen one is not.
    #[test]
    fn development_mode_beyond_loopback_must_be_chosen() {
        let public = Config::from_figment(&Config::defaults().merge(("server.https_addr", "0.0.0.0:8443")))
            .expect("loads");
        assert!(!public.env_chosen);
        assert_eq!(public.unchosen_development_exposure(), Some("0.0.0.0:8443".parse().expect("addr")));
        let chosen = Config::from_figment(
            &Config::defaults().merge(("server.https_addr", "0.0.0.0:8443")).merge(("env", "development")),
        )
        .expect("loads");
        assert!(chosen.env_chosen);
        assert_eq!(chosen.unchosen_development_exposure(), None);
        let loopback = Config::from_figment(&Config::defaults()).expect("loads");
        assert_eq!(loopback.unchosen_development_exposure(), None);
    }

    /// Mail carries links that sign in: production sends it over TLS only,
    /// and plain SMTP is for a loopback relay in development.
    #[test]
    fn mail_leaves_over_tls_in_production() {
        let problems =
            |config: &Config| config.production_problems().iter().map(|p| p.key).collect::<Vec<_>>();
        let outbox = with("env", "production").expect("loads");
        assert!(problems(&outbox).contains(&"mail.transport"));
        let smtp = Config::from_figment(
            &Config::defaults().merge(("env", "production")).merge(("mail.transport", "smtp")),
        )
        .expect("loads");
        assert!(!problems(&smtp).contains(&"mail.transport"), "smtp with STARTTLS by default");
        let plain_elsewhere = Config::from_figment(
            &Config::defaults()
                .merge(("mail.smtp.tls", "none"))
                .merge(("mail.smtp.host", "mail.example.com")),
        );
        assert!(
            plain_elsewhere.expect_err("plain SMTP across a network").to_string().contains("mail.smtp.tls")
        );
        with("mail.smtp.tls", "none").expect("plain SMTP to a loopback relay in development");
        assert!(with("mail.from", "not an address").is_err());
    }

    /// A shared limiter's Redis beyond loopback needs TLS and a password,
    /// and production logs no debug or trace lines.
    #[test]
    fn production_rejects_an_open_redis_and_verbose_logs() {
        let problems = |key: &str, value: &str| {
            let config = with(key, value).expect("loads");
            config.production_problems().iter().map(|p| p.key).collect::<Vec<_>>()
        };
        for unfit in [
            "redis://cache.internal:6379",
            "rediss://cache.internal:6379",
            "redis://:kq7Vx2mZp9RtL4wN@cache.internal:6379",
        ] {
            assert!(problems("rate_limit.redis_url", unfit).contains(&"rate_limit.redis_url"), "{unfit}");
        }
        for fit in [
            "rediss://:kq7Vx2mZp9RtL4wN@cache.internal:6379",
            "redis://127.0.0.1:6379",
            "redis://localhost",
            "redis://[::1]",
        ] {
            assert!(!problems("rate_limit.redis_url", fit).contains(&"rate_limit.redis_url"), "{fit}");
        }
        for verbose in ["debug", "info,sqlx=trace", "warn,app=debug"] {
            assert!(problems("log.filter", verbose).contains(&"log.filter"), "{verbose}");
        }
        for quiet in ["info", "info,sqlx=warn", "error"] {
            assert!(!problems("log.filter", quiet).contains(&"log.filter"), "{quiet}");
        }
    }

    /// Production needs every secret its features use, each long and random,
    /// and data keys of its own.
    #[test]
    fn production_secrets_are_present_and_unguessable() {
        let problems = |settings: &[(&str, &str)]| {
            let figment = settings
                .iter()
                .fold(Config::defaults().merge(("env", "production")), |figment, pair| figment.merge(*pair));
            let config = Config::from_figment(&figment).expect("loads");
            config.production_problems().into_iter().map(|p| (p.key, p.problem)).collect::<Vec<_>>()
        };
        let about = |settings: &[(&str, &str)], key: &str| {
            problems(settings).into_iter().find(|(name, _)| *name == key).map(|(_, problem)| problem)
        };
        let strong = "kq7Vx2mZp9RtL4wNc8Hj";
        assert!(about(&[], "encryption.keys").is_some_and(|p| p.starts_with("missing")));
        let development = format!("ours:{}", crate::encryption::DEVELOPMENT_KEY.1);
        assert!(
            about(&[("encryption.keys", &development)], "encryption.keys")
                .is_some_and(|p| p.contains("public"))
        );
        let own = "2026-11:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        assert_eq!(about(&[("encryption.keys", own)], "encryption.keys"), None);
        let oidc = [("oidc.issuer", "https://id.example.com"), ("oidc.client_id", "api")];
        assert_eq!(about(&oidc, "oidc.client_secret"), Some("missing"));
        for guessable in
            ["short-secret", "changeme-changeme-changeme", "xxxxxxxxxxxxxxxxxxxx", "My-Example-Secret-2026"]
        {
            let settings = [oidc[0], oidc[1], ("oidc.client_secret", guessable)];
            assert!(
                about(&settings, "oidc.client_secret").is_some_and(|p| p.starts_with("guessable")),
                "{guessable}"
            );
        }
        assert_eq!(about(&[oidc[0], oidc[1], ("oidc.client_secret", strong)], "oidc.client_secret"), None);
        assert_eq!(about(&[("mail.smtp.username", "api")], "mail.smtp.password"), Some("missing"));
        let smtp = [("mail.smtp.username", "api"), ("mail.smtp.password", "hunter2")];
        assert!(about(&smtp, "mail.smtp.password").is_some_and(|p| p.starts_with("guessable")));
        assert_eq!(about(&[smtp[0], ("mail.smtp.password", strong)], "mail.smtp.password"), None);
        let redis = [("rate_limit.redis_url", "redis://:password@127.0.0.1:6379")];
        assert!(about(&redis, "rate_limit.redis_url").is_some_and(|p| p.starts_with("guessable")));
        let secret_free = problems(&[("oidc.client_secret", "hunter2")]);
        assert!(!format!("{secret_free:?}").contains("hunter2"), "problems never echo a secret");
    }

    #[test]
    fn production_rejects_plain_http_public_url_and_origins() {
        let config = Config::from_figment(
            &Config::defaults()
                .merge(("server.public_url", "http://api.example.com"))
                .merge(("cors.allowed_origins", ["http://app.example.com"])),
        )
        .expect("loads");
        let keys: Vec<_> = config.production_problems().iter().map(|p| p.key).collect();
        assert!(keys.contains(&"server.public_url"), "{keys:?}");
        assert!(keys.contains(&"cors.allowed_origins"), "{keys:?}");
    }

    #[test]
    #[expect(clippy::result_large_err, reason = "the signature of figment::Jail's closure")]
    fn environment_variable_errors_name_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("APP_SERVER__REQUEST_TIMEOUT_SECS", "soon");
            let err = Config::load(None).expect_err("a non-number must be rejected");
            let message = err.to_string();
            assert!(message.contains("server.request_timeout_secs"), "{message}");
            assert!(message.contains("APP_SERVER__REQUEST_TIMEOUT_SECS"), "{message}");
            Ok(())
        });
    }

    /// Every secret can come from a file, as container platforms mount
    /// them, and is then as redacted as one set directly.
    #[test]
    #[expect(clippy::result_large_err, reason = "the signature of figment::Jail's closure")]
    fn secrets_can_be_read_from_files() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("redis-url", "redis://:s3cret-redis@cache.internal:6379\n")?;
            jail.create_file("client-secret", "0123456789")?;
            jail.create_file("smtp-password", "smtp s3cret\r\n")?;
            jail.create_file("data-keys", "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n")?;
            jail.set_env("APP_ENCRYPTION__KEYS_FILE", "data-keys");
            jail.set_env("APP_RATE_LIMIT__REDIS_URL_FILE", "redis-url");
            jail.set_env("APP_OIDC__ISSUER", "https://id.example.com");
            jail.set_env("APP_OIDC__CLIENT_ID", "api");
            jail.set_env("APP_OIDC__CLIENT_SECRET_FILE", "client-secret");
            jail.set_env("APP_MAIL__SMTP__USERNAME", "api");
            jail.set_env("APP_MAIL__SMTP__PASSWORD_FILE", "smtp-password");
            let config = Config::load(None).expect("loads");
            assert_eq!(
                config.rate_limit.redis_url.as_ref().map(Secret::expose),
                Some("redis://:s3cret-redis@cache.internal:6379")
            );
            assert_eq!(config.oidc.client_secret.as_ref().map(Secret::expose), Some("0123456789"));
            assert_eq!(config.mail.smtp.password.as_ref().map(Secret::expose), Some("smtp s3cret"));
            assert_eq!(config.encryption.data_keys().expect("keys").current_id(), "k1");
            let printed = format!("{config:?} {}", serde_json::to_string(&config).expect("serializes"));
            for secret in ["s3cret-redis", "0123456789", "smtp s3cret", "AQEBAQ"] {
                assert!(!printed.contains(secret), "{secret} printed");
            }

            jail.set_env("APP_MAIL__SMTP__PASSWORD_FILE", "missing-file");
            let missing = Config::load(None).expect_err("no such file").to_string();
            assert!(missing.contains("APP_MAIL__SMTP__PASSWORD_FILE"), "{missing}");
            jail.set_env("APP_MAIL__SMTP__PASSWORD_FILE", "smtp-password");
            jail.set_env("APP_MAIL__SMTP__PASSWORD", "also set directly");
            let both = Config::load(None).expect_err("both forms").to_string();
            assert!(both.contains("APP_MAIL__SMTP__PASSWORD_FILE"), "{both}");
            Ok(())
        });
    }

    /// The settings the defaults file holds or shows commented out, as
    /// the variable names that set them (`SERVER__HTTPS_ADDR`); an inline
    /// table's keys count one by one, a map with only an example as itself.
    fn settings_of_the_defaults() -> std::collections::BTreeSet<String> {
        let (mut section, mut settings) = (String::new(), std::collections::BTreeSet::new());
        for line in DEFAULTS.lines() {
            if let Some(name) = line.strip_prefix('[').and_then(|line| line.strip_suffix(']')) {
                section = format!("{}__", name.replace('.', "__").to_uppercase());
            } else if line.starts_with("# \"") && line.contains("\" = ") {
                settings.insert(section.trim_end_matches('_').to_owned());
            } else if let Some((key, value)) = line.trim_start_matches("# ").split_once(" = ")
                && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                let name = format!("{section}{}", key.to_uppercase());
                match value.strip_prefix("{ ").and_then(|value| value.strip_suffix(" }")) {
                    Some(table) => settings.extend(table.split(", ").filter_map(|part| {
                        part.split_once(" = ").map(|(key, _)| format!("{name}__{}", key.to_uppercase()))
                    })),
                    None => {
                        settings.insert(name);
                    }
                }
            }
        }
        settings
    }

    /// `.env.example` names every setting, each with a value the
    /// configuration accepts, and secrets only in their `_FILE` form.
    #[test]
    #[expect(clippy::result_large_err, reason = "the signature of figment::Jail's closure")]
    fn the_env_example_names_every_setting_with_a_value_that_loads() {
        let example: Vec<(&str, &str)> = include_str!("../.env.example")
            .lines()
            .filter_map(|line| line.trim_start_matches("# ").strip_prefix(ENV_PREFIX)?.split_once('='))
            .collect();
        let named: std::collections::BTreeSet<String> =
            example.iter().map(|(name, _)| name.trim_end_matches("_FILE").to_owned()).collect();
        assert_eq!(named, settings_of_the_defaults());
        for (name, _) in &example {
            let setting = name.trim_end_matches("_FILE");
            let secret = ["SECRET", "PASSWORD", "__KEYS"].iter().any(|suffix| setting.ends_with(suffix));
            assert!(!secret || name.ends_with("_FILE"), "{name}: a secret's value in the example");
        }
        figment::Jail::expect_with(|jail| {
            for (name, value) in example.iter().filter(|(name, _)| !name.ends_with("_FILE")) {
                jail.set_env(format!("{ENV_PREFIX}{name}"), value);
            }
            Config::load(None).map_err(|err| err.to_string())?;
            Ok(())
        });
    }

    #[test]
    #[expect(clippy::result_large_err, reason = "the signature of figment::Jail's closure")]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("APP_TLS__CERT_PTH", "/etc/cert.pem");
            let message = Config::load(None).expect_err("typo").to_string();
            assert!(message.contains("cert_pth"), "{message}");
            Ok(())
        });
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let err = with("server.request_timeout_secs", 0).expect_err("zero timeout");
        assert!(err.to_string().contains("server.request_timeout_secs"));
        let err = with("tls.cert_path", "/etc/cert.pem").expect_err("cert without key");
        assert!(err.to_string().contains("tls.key_path"));
        let err = with("log.filter", "info,=[").expect_err("bad filter");
        assert!(err.to_string().contains("log.filter"));
        let err = with("auth.password_min_length", 7).expect_err("below NIST's floor");
        assert!(err.to_string().contains("auth.password_min_length"));
        let symmetric = Config::from_figment(
            &Config::defaults()
                .merge(("oidc.issuer", "https://login.example.com"))
                .merge(("oidc.algorithms", ["HS256"])),
        );
        assert!(symmetric.expect_err("HMAC keys are shared secrets").to_string().contains("oidc.algorithms"));
        let plain = with("oidc.issuer", "http://login.example.com").expect_err("plain HTTP provider");
        assert!(plain.to_string().contains("oidc.issuer"));
    }

    #[test]
    fn origins_must_be_canonical() {
        for bad in [
            "*",
            "https://app.example.com/",
            "app.example.com",
            "https://app.example.com/path",
            "ftp://x.example",
        ] {
            let err = with("cors.allowed_origins", [bad]).expect_err(bad);
            assert!(err.to_string().contains("cors.allowed_origins"), "{bad}");
        }
        with("cors.allowed_origins", ["https://app.example.com", "http://localhost:3000"])
            .expect("valid origins");
    }

    #[test]
    fn database_passwords_never_print() {
        let url = DatabaseUrl(
            "postgres://svc:hunter2@db.internal:5432/app?sslpassword=s3cret&sslmode=require".into(),
        );
        let shown = format!("{url:?} {}", url.redacted());
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.internal") && shown.contains("sslmode=require"), "{shown}");
    }
}
