//! Rate limits: exact quotas per class and key, the 429 and its header
//! fields, the in-memory and Redis stores, and what happens while Redis is
//! down. Tests marked `ignore` need the Redis at `TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`): `cargo test -- --include-ignored`.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use app::{
    authz::{self, ROUTES},
    config::Config,
    db::Pool,
    http,
    rate_limit::Class,
    telemetry,
};
use axum::http::StatusCode;
use figment::Figment;
use serde_json::json;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::helpers::{CapturedLogs, PASSWORD, TestApp, TestResponse, config_with};

const JWKS: &str = "/.well-known/jwks.json";

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A configuration whose `class` allows `requests` per `window_secs`; with
/// `redis`, shared under a prefix of this test's own.
fn limited(class: &str, requests: u32, window_secs: u64, redis: Option<(&str, &str)>) -> Config {
    config_with(|figment| {
        let figment = figment.merge((
            format!("rate_limit.{class}"),
            json!({"requests": requests, "window_secs": window_secs}),
        ));
        match redis {
            Some((url, prefix)) => with_redis(figment, url, prefix),
            None => figment,
        }
    })
}

fn with_redis(figment: Figment, url: &str, prefix: &str) -> Figment {
    figment.merge(("rate_limit.redis_url", url)).merge(("rate_limit.redis_key_prefix", prefix))
}

fn unique_prefix() -> String {
    format!("test-{}:", uuid::Uuid::new_v4())
}

/// `r`, the requests left, from the `RateLimit` field.
fn remaining(response: &TestResponse) -> u32 {
    let state = response.header("ratelimit");
    let r = state.split(';').find_map(|parameter| parameter.strip_prefix("r="));
    r.and_then(|r| r.parse().ok()).unwrap_or_else(|| panic!("no r in RateLimit: {state:?}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

/// Three requests a second: all three at once, the fourth refused with its
/// header fields, and after the window a whole quota again.
async fn assert_exact_limit(app: &TestApp) {
    for left in [2, 1, 0] {
        let response = app.get(JWKS).await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.header("ratelimit-policy"), "\"anonymous\";q=3;w=1");
        assert_eq!(response.header("ratelimit"), format!("\"anonymous\";r={left};t=1"));
    }
    let refused = app.get(JWKS).await;
    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_eq!(refused.header("retry-after"), "1");
    assert_eq!(refused.header("ratelimit"), "\"anonymous\";r=0;t=1");
    let elsewhere = app.send_from(ip("192.0.2.1"), get(JWKS)).await;
    assert_eq!(remaining(&elsewhere), 2, "another address has its own quota");
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    let rested = app.get(JWKS).await;
    assert_eq!(rested.status, StatusCode::OK, "allowed again after the window");
    assert_eq!(remaining(&rested), 2);
}

fn get(uri: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::get(uri).body(axum::body::Body::empty()).expect("request")
}

#[sqlx::test]
async fn the_memory_store_allows_exactly_the_quota(pool: Pool) {
    let app = TestApp::with_config(pool, limited("anonymous", 3, 1, None)).await;
    assert_exact_limit(&app).await;
}

#[sqlx::test]
#[ignore = "needs Redis"]
async fn the_redis_store_allows_exactly_the_quota(pool: Pool) {
    let (url, prefix) = (redis_url(), unique_prefix());
    let app = TestApp::with_config(pool, limited("anonymous", 3, 1, Some((&url, &prefix)))).await;
    assert_exact_limit(&app).await;
}

/// Every instance that shares the Redis counts against one limit.
#[sqlx::test]
#[ignore = "needs Redis"]
async fn two_instances_sharing_redis_enforce_one_limit(pool: Pool) {
    let (url, prefix) = (redis_url(), unique_prefix());
    let first = TestApp::with_config(pool.clone(), limited("anonymous", 4, 60, Some((&url, &prefix)))).await;
    let second = TestApp::with_config(pool, limited("anonymous", 4, 60, Some((&url, &prefix)))).await;
    for (app, left) in [(&first, 3), (&second, 2), (&first, 1), (&second, 0)] {
        assert_eq!(remaining(&app.get(JWKS).await), left);
    }
    first.get(JWKS).await.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    second.get(JWKS).await.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
}

/// A `redis-server` of this test's own, reachable only over TLS (its
/// certificate for localhost, self-signed) and only with a password: what
/// production requires of a Redis beyond loopback. Stopped when dropped.
struct TlsRedis {
    process: std::process::Child,
    port: u16,
    password: String,
    files: tempfile::TempDir,
}

impl TlsRedis {
    fn start() -> Self {
        let files = tempfile::tempdir().expect("tempdir");
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        std::fs::write(files.path().join("cert.pem"), pair.cert.pem()).expect("write certificate");
        std::fs::write(files.path().join("key.pem"), pair.signing_key.serialize_pem()).expect("write key");
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let password = uuid::Uuid::new_v4().simple().to_string();
        let file = |name: &str| files.path().join(name).to_string_lossy().into_owned();
        let process = std::process::Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1", "--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &file("cert.pem"), "--tls-key-file", &file("key.pem")])
            .args(["--tls-ca-cert-file", &file("cert.pem"), "--tls-auth-clients", "no"])
            .args(["--requirepass", &password, "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian's redis-server package)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { process, port, password, files }
    }

    fn ca_cert(&self) -> std::path::PathBuf {
        self.files.path().join("cert.pem")
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Over TLS with a password, and the certificate verified against the
/// configured CA, instances still share one limit; without that CA the
/// server is not trusted and each instance falls back to counting alone.
#[sqlx::test]
#[ignore = "needs redis-server"]
async fn instances_share_one_limit_through_redis_over_tls(pool: Pool) {
    let redis = TlsRedis::start();
    let url = format!("rediss://:{}@localhost:{}", redis.password, redis.port);
    let prefix = unique_prefix();
    let config = |ca: Option<&std::path::Path>| {
        config_with(|figment| {
            // Time for a TLS handshake on a loaded machine, so that no request
            // falls back to counting in memory while the connection is made.
            let figment = with_redis(figment, &url, &prefix)
                .merge(("rate_limit.anonymous", json!({"requests": 4, "window_secs": 60})))
                .merge(("rate_limit.redis_timeout_ms", 1000));
            match ca {
                Some(ca) => figment.merge(("rate_limit.redis_ca_cert", ca)),
                None => figment,
            }
        })
    };
    let first = TestApp::with_config(pool.clone(), config(Some(&redis.ca_cert()))).await;
    let second = TestApp::with_config(pool.clone(), config(Some(&redis.ca_cert()))).await;
    for (app, left) in [(&first, 3), (&second, 2), (&first, 1), (&second, 0)] {
        assert_eq!(remaining(&app.get(JWKS).await), left);
    }
    second.get(JWKS).await.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");

    let untrusting = TestApp::with_config(pool, config(None)).await;
    assert_eq!(remaining(&untrusting.get(JWKS).await), 3, "an unverified Redis is not used");
}

/// Orchestrators must always reach the probes.
#[sqlx::test]
async fn the_probes_are_never_limited(pool: Pool) {
    let app = TestApp::with_config(pool, limited("anonymous", 1, 60, None)).await;
    for _ in 0..5 {
        let response = app.get("/healthz").await;
        assert_eq!(response.status, StatusCode::OK);
        assert!(response.headers.get("ratelimit").is_none(), "probes carry no limit");
    }
}

/// Authenticated routes count per account: one account's quota is not
/// another's, even from one address.
#[sqlx::test]
async fn authenticated_routes_count_per_account(pool: Pool) {
    let app = TestApp::with_config(pool, limited("authenticated", 2, 60, None)).await;
    let ann = app.signed_up("ann@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    for left in [1, 0] {
        let response = app.get_as("/api/v1/me", &ann.access).await;
        assert_eq!(response.header("ratelimit-policy"), "\"authenticated\";q=2;w=60");
        assert_eq!(remaining(&response), left);
    }
    app.get_as("/api/v1/notes", &ann.access)
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_eq!(app.get_as("/api/v1/me", &bob.access).await.status, StatusCode::OK);
}

/// A bad token costs its address anonymous quota, so guessing tokens is
/// limited like any anonymous traffic.
#[sqlx::test]
async fn bad_tokens_count_against_the_address(pool: Pool) {
    let app = TestApp::with_config(pool, limited("anonymous", 2, 60, None)).await;
    for _ in 0..2 {
        app.get_as("/api/v1/me", "forged").await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    }
    let refused = app.get_as("/api/v1/me", "forged").await;
    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_eq!(refused.header("ratelimit-policy"), "\"anonymous\";q=2;w=60");
}

/// Login counts per address and per the account it names: many addresses
/// cannot hammer one account, one address cannot hammer many.
#[sqlx::test]
async fn login_counts_per_address_and_per_named_account(pool: Pool) {
    let app = TestApp::with_config(pool, limited("credentials", 3, 60, None)).await;
    let login = |email: &str| json!({"email": email, "password": "not the password"});
    for client in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        let response = app.post_from(ip(client), "/api/v1/auth/login", None, &login("ann@example.com")).await;
        response.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let fourth = app.post_from(ip("192.0.2.4"), "/api/v1/auth/login", None, &login("Ann@Example.com")).await;
    fourth.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_eq!(fourth.header("ratelimit-policy"), "\"credentials\";q=3;w=60");

    for email in ["bob@example.com", "cy@example.com", "di@example.com"] {
        let response = app.post_from(ip("192.0.2.9"), "/api/v1/auth/login", None, &login(email)).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    }
    let fourth = app.post_from(ip("192.0.2.9"), "/api/v1/auth/login", None, &login("ed@example.com")).await;
    fourth.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
}

/// Mail routes count per named account too: one address gets few reset
/// mails, whoever asks.
#[sqlx::test]
async fn password_reset_counts_per_named_account(pool: Pool) {
    let app = TestApp::with_config(pool, limited("mail", 2, 600, None)).await;
    let body = json!({"email": "ann@example.com"});
    for client in ["192.0.2.1", "192.0.2.2"] {
        let response = app.post_from(ip(client), "/api/v1/auth/password-reset", None, &body).await;
        assert_eq!(response.status, StatusCode::ACCEPTED);
    }
    let third = app.post_from(ip("192.0.2.3"), "/api/v1/auth/password-reset", None, &body).await;
    third.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
}

/// Authenticated strict routes count per address and per account.
#[sqlx::test]
async fn password_change_counts_per_account(pool: Pool) {
    let config = config_with(|figment| {
        figment
            .merge(("rate_limit.credentials", json!({"requests": 3, "window_secs": 60})))
            .merge(("auth.throttle_per_address", 10))
            .merge(("auth.throttle_per_account", 10))
    });
    let app = TestApp::with_config(pool, config).await;
    let ann = app.signed_up("ann@example.com").await;
    let change = json!({"current_password": "not the password", "new_password": "a new long passphrase"});
    for client in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        let response = app.post_from(ip(client), "/api/v1/auth/password", Some(&ann.access), &change).await;
        assert_ne!(response.status, StatusCode::TOO_MANY_REQUESTS);
    }
    let fourth = app.post_from(ip("192.0.2.4"), "/api/v1/auth/password", Some(&ann.access), &change).await;
    fourth.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
}

/// The document lists 429 for exactly the limited operations.
#[test]
fn openapi_documents_429_for_every_limited_operation() {
    let document = serde_json::to_value(http::openapi()).expect("JSON");
    let mut limited = 0;
    for row in ROUTES {
        let operation = &document["paths"][row.path][row.method.to_lowercase()];
        if operation.is_null() {
            continue;
        }
        let documented = operation["responses"].get("429").is_some();
        assert_eq!(documented, row.limit != Class::Unlimited, "{} {}", row.method, row.path);
        if documented {
            limited += 1;
            assert!(operation["responses"]["429"]["headers"]["Retry-After"].is_object());
            for (status, response) in operation["responses"].as_object().expect("responses") {
                for field in ["RateLimit", "RateLimit-Policy"] {
                    assert!(response["headers"][field].is_object(), "{} {} {status}", row.method, row.path);
                }
            }
        }
    }
    assert!(limited > 20, "only {limited} limited operations documented");
    assert_eq!(authz::policy("GET", "/healthz").map(|row| row.limit), Some(Class::Unlimited));
}

/// A port where nothing listens: connections to it are refused.
async fn refusing_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address")
}

/// Redis refusing connections, `on_redis_failure = "memory"`: the limit
/// holds in this instance's memory, and the outage is logged once.
#[sqlx::test]
async fn while_redis_is_unreachable_limits_hold_in_memory_and_are_logged_once(pool: Pool) {
    let down = format!("redis://{}", refusing_port().await);
    let config = config_with(|figment| {
        with_redis(figment, &down, "unreachable:")
            .merge(("rate_limit.anonymous", json!({"requests": 2, "window_secs": 60})))
            .merge(("log.format", "json"))
    });
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(&config, logs.clone()));
    let app = TestApp::with_config(pool, config).await;
    let started = Instant::now();
    for left in [1, 0] {
        assert_eq!(remaining(&app.get(JWKS).await), left);
    }
    for _ in 0..5 {
        app.get(JWKS).await.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    }
    assert!(started.elapsed() < Duration::from_secs(2), "requests waited for Redis: {:?}", started.elapsed());
    let text = logs.text();
    assert_eq!(text.matches("rate-limit store (Redis) unavailable").count(), 1, "{text}");
}

/// `on_redis_failure = "deny"`: limited requests are refused while Redis
/// cannot answer; the probes still answer.
#[sqlx::test]
async fn while_redis_is_unreachable_deny_refuses_limited_requests(pool: Pool) {
    let down = format!("redis://{}", refusing_port().await);
    let config = config_with(|figment| {
        with_redis(figment, &down, "deny:").merge(("rate_limit.on_redis_failure", "deny"))
    });
    let app = TestApp::with_config(pool, config).await;
    let refused = app.get(JWKS).await;
    refused.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert_eq!(refused.header("retry-after"), "1");
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}

/// A TCP relay to Redis that can be cut and restored, standing in for a
/// Redis that goes away and comes back.
struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0_u64);
        let (relay_up, relay_cut) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !relay_up.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cut = relay_cut.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut redis) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut redis) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { addr, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|generation| *generation += 1);
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Redis goes away and comes back: meanwhile the instance limits alone in
/// memory and says so once; afterwards the limit is shared again, without
/// a restart.
#[sqlx::test]
#[ignore = "needs Redis"]
async fn after_a_redis_outage_the_limit_is_shared_again(pool: Pool) {
    let url = redis_url();
    let relay = Relay::start(url.trim_start_matches("redis://").trim_end_matches('/').to_owned()).await;
    let prefix = unique_prefix();
    let relayed_url = format!("redis://{}", relay.addr);
    let relayed_config = limited("anonymous", 4, 60, Some((&relayed_url, &prefix)));
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(&relayed_config, logs.clone()));
    let relayed = TestApp::with_config(pool.clone(), relayed_config).await;
    let direct = TestApp::with_config(pool, limited("anonymous", 4, 60, Some((&url, &prefix)))).await;

    assert_eq!(remaining(&relayed.get(JWKS).await), 3);
    assert_eq!(remaining(&direct.get(JWKS).await), 2, "one limit while Redis answers");

    relay.down();
    for left in [3, 2, 1, 0] {
        assert_eq!(remaining(&relayed.get(JWKS).await), left, "a whole quota in memory meanwhile");
    }
    relayed.get(JWKS).await.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_eq!(logs.text().matches("rate-limit store (Redis) unavailable").count(), 1, "{}", logs.text());

    relay.up();
    let deadline = Instant::now() + Duration::from_secs(10);
    let back = loop {
        let response = relayed.get(JWKS).await;
        if response.status == StatusCode::OK || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(back.status, StatusCode::OK, "Redis was not used again within ten seconds");
    assert_eq!(remaining(&back), 1, "the shared count went on where it was");
    assert_eq!(remaining(&direct.get(JWKS).await), 0);
    assert_eq!(logs.text().matches("limits are shared again").count(), 1, "{}", logs.text());
}

/// Login with the account's password still works for its owner from
/// another address while one address is limited.
#[sqlx::test]
async fn a_limited_address_does_not_lock_the_owner_out(pool: Pool) {
    let app = TestApp::with_config(pool, limited("credentials", 2, 60, None)).await;
    app.register("ann@example.com").await;
    let wrong = json!({"email": "bob@example.com", "password": "wrong"});
    for _ in 0..3 {
        app.post_from(ip("192.0.2.66"), "/api/v1/auth/login", None, &wrong).await;
    }
    let right = json!({"email": "ann@example.com", "password": PASSWORD});
    let response = app.post_from(ip("192.0.2.7"), "/api/v1/auth/login", None, &right).await;
    assert_eq!(response.status, StatusCode::OK);
}
