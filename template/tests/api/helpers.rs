//! Spawning the application for a test, and asserting on what it answers.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::{Arc, LazyLock, Mutex},
    time::Duration,
};

use app::{
    AppState,
    auth::keys::KeySet,
    config::{Config, Environment},
    db::Pool,
    http::{self, ApiError},
    server::Server,
};
use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::ConnectInfo,
    http::{HeaderMap, Method, Request, StatusCode, header},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use figment::Figment;
use http_body_util::BodyExt;
use tokio::{sync::oneshot, task::JoinHandle};
use tower::ServiceExt;
use tracing_subscriber::fmt::MakeWriter;

/// The built-in defaults with the HTTPS listener on a free port, plus the
/// test's own overrides.
pub fn config_with(overrides: impl FnOnce(Figment) -> Figment) -> Config {
    let figment = Config::defaults()
        .merge(("server.https_addr", "127.0.0.1:0"))
        .merge(("auth.keys_dir", keys_dir()))
        .merge(("mail.outbox_dir", Path::new(env!("CARGO_TARGET_TMPDIR")).join("outbox")))
        .merge(("rate_limit", generous_rate_limits()));
    Config::from_figment(&overrides(figment)).expect("test configuration is valid")
}

/// Rate limits no test reaches by accident: tests send many requests from
/// one address. The tests of the limits (`rate_limits.rs`) set their own.
fn generous_rate_limits() -> serde_json::Value {
    let quota = serde_json::json!({"requests": 100_000, "window_secs": 60});
    serde_json::json!({"anonymous": quota, "authenticated": quota, "credentials": quota, "mail": quota})
}

/// The token keys every test of this run shares, generated once under
/// Cargo's scratch directory for integration tests.
pub fn keys_dir() -> &'static Path {
    static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("jwt-keys");
        KeySet::load(&dir, Environment::Development).expect("test keys");
        dir
    });
    &DIR
}

pub fn config() -> Config {
    config_with(|figment| figment)
}

/// The real router, called in process.
pub struct TestApp {
    router: Router,
    /// The application's database, when it has one (not for probes).
    pool: Option<Pool>,
}

impl TestApp {
    pub async fn new(pool: Pool) -> Self {
        Self::with_config(pool, config()).await
    }

    pub async fn with_config(pool: Pool, config: Config) -> Self {
        Self { router: full_router(pool.clone(), config).await, pool: Some(pool) }
    }

    /// The real router on `state`, for tests that reach into the services.
    pub fn with_state(state: AppState) -> Self {
        Self { pool: Some(state.db.clone()), router: http::router(state) }
    }

    /// Test-only routes (slow, panicking, …) wrapped in the production
    /// middleware stack.
    pub fn probe(routes: Router, config: &Config) -> Self {
        Self { router: http::with_middleware(routes, config), pool: None }
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.send(Request::get(uri).body(Body::empty()).expect("request")).await
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        self.send_from(CLIENT_IP, request).await
    }

    /// Sends `request` as if from `client`: the peer address the server's
    /// connection info reports, as for a real socket.
    pub async fn send_from(&self, client: IpAddr, mut request: Request<Body>) -> TestResponse {
        request.extensions_mut().insert(ConnectInfo(SocketAddr::new(client, 40_000)));
        let response = self.router.clone().oneshot(request).await.expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        TestResponse { status: parts.status, headers: parts.headers, body }
    }

    /// POSTs `body` as JSON, with a bearer token when one is given.
    pub async fn post(&self, uri: &str, token: Option<&str>, body: &serde_json::Value) -> TestResponse {
        self.post_from(CLIENT_IP, uri, token, body).await
    }

    /// `post`, from the client address `client`.
    pub async fn post_from(
        &self,
        client: IpAddr,
        uri: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> TestResponse {
        let mut request = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send_from(client, request.body(Body::from(body.to_string())).expect("request")).await
    }

    /// GETs with `Authorization: Bearer <token>`.
    pub async fn get_as(&self, uri: &str, token: &str) -> TestResponse {
        let request = Request::get(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
        self.send(request.body(Body::empty()).expect("request")).await
    }

    /// Registers `email` with [`PASSWORD`] and returns the new account.
    /// Registers `email` with [`PASSWORD`], its address taken as proven (the
    /// mail flows are tested in `email.rs`), and returns `{"id": …}`.
    pub async fn register(&self, email: &str) -> serde_json::Value {
        let id = self.register_unverified(email).await;
        let pool = self.pool.as_ref().expect("an app with a database");
        sqlx::query("UPDATE users SET email_verified_at = created_at WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .expect("verify");
        serde_json::json!({"id": id.to_string()})
    }

    /// Registers `email` with [`PASSWORD`], its address not yet proven, and
    /// returns the new account's id.
    pub async fn register_unverified(&self, email: &str) -> uuid::Uuid {
        let body = serde_json::json!({"email": email, "password": PASSWORD});
        let response = self.post("/api/v1/auth/register", None, &body).await;
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&response.body));
        let pool = self.pool.as_ref().expect("an app with a database");
        let canonical = app::domain::Email::try_from(email.to_owned()).expect("an address");
        sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind(canonical.as_str())
            .fetch_one(pool)
            .await
            .expect("registered")
    }

    /// Logs in and returns the token pair.
    pub async fn login(&self, email: &str, password: &str) -> TokenPair {
        let body = serde_json::json!({"email": email, "password": password});
        let response = self.post("/api/v1/auth/login", None, &body).await;
        assert_eq!(response.status, StatusCode::OK, "{}", String::from_utf8_lossy(&response.body));
        let pair = response.json();
        TokenPair {
            access: pair["access_token"].as_str().expect("access token").to_owned(),
            refresh: pair["refresh_token"].as_str().expect("refresh token").to_owned(),
        }
    }

    /// Registers `email` and logs in.
    pub async fn signed_up(&self, email: &str) -> TokenPair {
        self.register(email).await;
        self.login(email, PASSWORD).await
    }

    /// Any method, with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> TestResponse {
        let mut request =
            Request::builder().method(Method::from_bytes(method.as_bytes()).expect("method")).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).expect("request")).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> TestResponse {
        self.post("/api/v1/auth/refresh", None, &serde_json::json!({"refresh_token": refresh_token})).await
    }
}

/// Makes the account `user_id` an admin, as `create-admin` would.
pub async fn grant_admin(pool: &Pool, user_id: &str) {
    let id = uuid::Uuid::parse_str(user_id).expect("uuid");
    sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, 'admin')")
        .bind(id)
        .execute(pool)
        .await
        .expect("grant admin");
}

/// The password test accounts register with: long enough, not common.
pub const PASSWORD: &str = "correct horse battery staple";

/// The client address of in-process requests unless a test names another
/// (any 127.x address works as a distinct client).
pub const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub struct TokenPair {
    pub access: String,
    pub refresh: String,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("missing header {name}"))
            .to_str()
            .expect("ASCII header")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts the one error shape, with the request id of the response
    /// header, and returns the `error` object.
    pub fn assert_error(&self, status: StatusCode, code: &str) -> serde_json::Value {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type"), "application/json");
        assert_error_body(&self.json(), code, self.header("x-request-id"))
    }
}

/// The checks of `assert_error` on a body received any other way.
pub fn assert_error_body(body: &serde_json::Value, code: &str, request_id: &str) -> serde_json::Value {
    let outer: Vec<&String> = body.as_object().expect("an object").keys().collect();
    assert_eq!(outer, ["error"], "{body}");
    let error = &body["error"];
    let mut fields: Vec<&str> = error.as_object().expect("error object").keys().map(String::as_str).collect();
    fields.sort_unstable();
    let expected: &[&str] = if code == "VALIDATION_FAILED" {
        &["code", "details", "message", "request_id"]
    } else {
        &["code", "message", "request_id"]
    };
    assert_eq!(fields, expected, "{body}");
    assert_eq!(error["code"], code, "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(error["request_id"], request_id, "{body}");
    error.clone()
}

/// The application on a real TLS socket, with a client that trusts its
/// freshly generated development certificate.
pub struct TlsApp {
    pub https: SocketAddr,
    pub redirect: Option<SocketAddr>,
    pub client: reqwest::Client,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
    certificates: tempfile::TempDir,
}

impl TlsApp {
    pub async fn spawn(pool: Pool) -> Self {
        Self::spawn_with(async |config| full_router(pool, config.clone()).await, |figment| figment).await
    }

    /// Starts `make_app(config)` with the test's configuration overrides and
    /// a certificate in a temporary directory.
    pub async fn spawn_with(
        make_app: impl AsyncFnOnce(&Config) -> Router,
        overrides: impl FnOnce(Figment) -> Figment,
    ) -> Self {
        let certificates = tempfile::tempdir().expect("tempdir");
        let dir = certificates.path().to_owned();
        let config = config_with(|figment| overrides(figment.merge(("tls.dev_cert_dir", &dir))));
        let server = Server::bind(&config, make_app(&config).await).expect("bind");
        let (https, redirect) = (server.https_addr(), server.http_redirect_addr());
        let (shutdown, requested) = oneshot::channel::<()>();
        let server = tokio::spawn(server.run(async {
            let _ = requested.await;
        }));
        Self {
            https,
            redirect,
            client: trusting_client(&dir.join("cert.pem"), https, reqwest::Client::builder()),
            shutdown,
            server,
            certificates,
        }
    }

    /// `path` on this server, by the name its certificate is valid for.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https.port())
    }

    /// A client builder that trusts this server's certificate, for tests
    /// that need other client settings (HTTP/1.1 only, …).
    pub fn client_builder(&self, builder: reqwest::ClientBuilder) -> reqwest::Client {
        trusting_client(&self.certificate(), self.https, builder)
    }

    /// The server's certificate (PEM), for clients built by hand.
    pub fn certificate(&self) -> PathBuf {
        self.certificates.path().join("cert.pem")
    }

    /// Requests a graceful shutdown and waits until the server stopped.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.server.await?
    }
}

/// The application's own router, as `serve` builds it.
pub async fn full_router(pool: Pool, config: Config) -> Router {
    http::router(app_state(pool, config).await)
}

/// The state `serve` builds, for tests that wire their own routes to it.
pub async fn app_state(pool: Pool, config: Config) -> AppState {
    AppState::new(config, pool).expect("the application's services")
}

/// Routes that fail in each way a real handler can, for tests that wrap
/// them in the production stack (`TestApp::probe`).
#[expect(clippy::disallowed_methods, reason = "probe routes exist only in tests and are not API operations")]
pub fn probes() -> Router {
    Router::new()
        .route("/panic", get(panics))
        .route(
            "/internal",
            get(|| async { ApiError::Internal(anyhow::anyhow!("secret driver detail: relation users")) }),
        )
        .route("/slow", get(|| async { tokio::time::sleep(Duration::from_secs(5)).await }))
        .route("/json", post(|Json(body): Json<serde_json::Value>| async move { Json(body) }))
}

async fn panics() -> &'static str {
    panic!("secret panic detail /home/app/src/lib.rs")
}

/// The claims of a token the service issued.
pub fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

/// The service's own signing key, as the tests' configuration uses it.
pub fn signing_keys() -> KeySet {
    KeySet::load(keys_dir(), Environment::Development).expect("keys")
}

/// `token` with `change` applied to its claims, signed again with the
/// service's key: what the service would have issued with those claims.
pub fn reissued(token: &str, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let header = jsonwebtoken::decode_header(token).expect("header");
    let mut claims = claims_of(token);
    change(&mut claims);
    jsonwebtoken::encode(&header, &claims, signing_keys().signing_key()).expect("sign")
}

fn trusting_client(cert: &Path, addr: SocketAddr, builder: reqwest::ClientBuilder) -> reqwest::Client {
    let pem = std::fs::read(cert).expect("the server wrote its certificate");
    builder
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("PEM certificate")])
        .resolve("localhost", addr)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Log lines captured in memory, as the production subscriber writes them.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("UTF-8 logs")
    }
}

impl io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
