//! OpenID Connect against a real provider: `oidc-provider` (OpenID
//! Certified), run by these tests on 127.0.0.1 from `tests/oidc-provider/`.
//! Node.js 20.19 or newer must be installed; the package is installed with
//! `npm ci` when missing. `SKIP_OIDC_PROVIDER_TESTS=1` skips them explicitly.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::Mutex,
};

use app::db::Pool;
use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use serde_json::{Value, json};

use crate::{
    audit,
    helpers::{PASSWORD, TestApp, TestResponse, TokenPair, config_with},
};

/// What the app calls itself in these tests; the provider redirects the
/// browser here, and the tests hand that redirect to the in-process app.
const PUBLIC_URL: &str = "https://api.test";
const OTHER_AUDIENCE: &str = "https://other-api.example";

/// A running provider; it stops when dropped.
struct OidcProvider {
    issuer: String,
    child: Child,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a provider, or `None` when the tests are explicitly skipped.
fn provider() -> Option<OidcProvider> {
    if std::env::var_os("SKIP_OIDC_PROVIDER_TESTS").is_some() {
        eprintln!("SKIP_OIDC_PROVIDER_TESTS is set: skipping a test against oidc-provider");
        return None;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider");
    install_once(&dir);
    let settings = json!({
        "redirectUri": format!("{PUBLIC_URL}/api/v1/auth/oidc/callback"),
        "audience": PUBLIC_URL,
        "otherAudience": OTHER_AUDIENCE,
    });
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .arg(settings.to_string())
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs (install Node.js 20.19+, or set SKIP_OIDC_PROVIDER_TESTS=1)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the provider starts");
    let started: Value = serde_json::from_str(&line).expect("the provider prints its issuer");
    Some(OidcProvider { issuer: started["issuer"].as_str().expect("issuer").to_owned(), child })
}

fn install_once(dir: &Path) {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if dir.join("node_modules/oidc-provider").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .expect("npm runs (install Node.js 20.19+, or set SKIP_OIDC_PROVIDER_TESTS=1)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

/// The app, configured for the provider.
async fn app(pool: Pool, provider: &OidcProvider) -> TestApp {
    let config = config_with(|figment| {
        figment
            .merge(("server.public_url", PUBLIC_URL))
            .merge(("oidc.issuer", &provider.issuer))
            .merge(("oidc.client_id", "api-login"))
            .merge(("oidc.client_secret", "api-login-secret"))
            .merge(("oidc.role_map", json!({"api-admins": "admin"})))
    });
    TestApp::with_config(pool, config).await
}

/// A browser without JavaScript: follows the login from this API to the
/// provider, signs in as `login` and consents, and returns the callback
/// request the provider redirected to (path and query), with the cookie the
/// API set.
async fn sign_in_at_provider(app: &TestApp, login: &str) -> (String, String) {
    let start = app.get("/api/v1/auth/oidc/login").await;
    assert_eq!(start.status, StatusCode::FOUND, "{}", String::from_utf8_lossy(&start.body));
    let cookie = start.header("set-cookie").split(';').next().expect("cookie").to_owned();
    assert!(start.header("set-cookie").contains("HttpOnly") && start.header("set-cookie").contains("Secure"));
    let location = start.header("location");
    assert!(location.contains("code_challenge_method=S256") && location.contains("nonce="), "{location}");
    (browse_to_callback(location, login).await, cookie)
}

/// From the provider's authorization URL `location`: signs in as `login`,
/// consents, and returns the path and query the provider redirected to on
/// this API.
async fn browse_to_callback(location: &str, login: &str) -> String {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut location = location.to_owned();
    let mut request = browser.get(&location);
    for _ in 0..20 {
        let response = request.send().await.expect("the provider answers");
        let url = response.url().clone();
        if response.status().is_redirection() {
            location =
                url.join(response.headers()["location"].to_str().expect("ASCII")).expect("url").to_string();
            if let Some(callback) = location.strip_prefix(PUBLIC_URL) {
                return callback.to_owned();
            }
            request = browser.get(&location);
            continue;
        }
        let page = response.text().await.expect("page");
        let action = attribute(&page, "action").unwrap_or_else(|| panic!("no form on the page:\n{page}"));
        let mut form: Vec<(String, String)> = hidden_inputs(&page);
        if page.contains(r#"name="login""#) {
            form.push(("login".to_owned(), login.to_owned()));
            form.push(("password".to_owned(), "any password".to_owned()));
        }
        request = browser.post(url.join(&action).expect("action url")).form(&form);
    }
    panic!("the login never came back to the API");
}

/// An access token the provider issues to `login` for this API, as another
/// client of the provider (a single-page app, say) would get it: the code
/// flow with PKCE and the API as the resource.
async fn provider_access_token(provider: &OidcProvider, login: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use sha2::{Digest, Sha256};

    let verifier = "a-code-verifier-of-at-least-forty-three-characters-long";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let redirect_uri = format!("{PUBLIC_URL}/api/v1/auth/oidc/callback");
    let mut authorize = url::Url::parse(&format!("{}/auth", provider.issuer)).expect("url");
    authorize
        .query_pairs_mut()
        .append_pair("client_id", "api-login")
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "openid email notes:read notes:write")
        .append_pair("resource", PUBLIC_URL)
        .append_pair("state", "test-state-value")
        .append_pair("nonce", "test-nonce-value")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let callback = browse_to_callback(authorize.as_str(), login).await;
    let callback = url::Url::parse(&format!("{PUBLIC_URL}{callback}")).expect("callback url");
    let code = callback.query_pairs().find(|(name, _)| name == "code").expect("a code").1.into_owned();
    let response = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth("api-login", Some("api-login-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", verifier),
            ("resource", PUBLIC_URL),
        ])
        .send()
        .await
        .expect("token endpoint");
    let body: Value = response.json().await.expect("JSON");
    body["access_token"].as_str().unwrap_or_else(|| panic!("no token: {body}")).to_owned()
}

fn attribute(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!(r#"{name}=""#))? + name.len() + 2;
    Some(html[start..].split('"').next()?.to_owned())
}

fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input")
        .filter(|input| input.contains(r#"type="hidden""#))
        .filter_map(|input| Some((attribute(input, "name")?, attribute(input, "value")?)))
        .collect()
}

async fn callback(app: &TestApp, path: &str, cookie: Option<&str>) -> TestResponse {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    app.send(request.body(Body::empty()).expect("request")).await
}

async fn log_in_through_provider(app: &TestApp, login: &str) -> TokenPair {
    let (path, cookie) = sign_in_at_provider(app, login).await;
    let response = callback(app, &path, Some(&cookie)).await;
    assert_eq!(response.status, StatusCode::OK, "{}", String::from_utf8_lossy(&response.body));
    let pair = response.json();
    TokenPair {
        access: pair["access_token"].as_str().expect("access").to_owned(),
        refresh: pair["refresh_token"].as_str().expect("refresh").to_owned(),
    }
}

async fn client_credentials_token(provider: &OidcProvider, resource: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth("reporting-service", Some("reporting-service-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "notes:read"), ("resource", resource)])
        .send()
        .await
        .expect("token endpoint");
    let body: Value = response.json().await.expect("JSON");
    body["access_token"].as_str().unwrap_or_else(|| panic!("no token: {body}")).to_owned()
}

#[sqlx::test]
async fn login_at_the_provider_issues_this_services_tokens(pool: Pool) {
    let Some(provider) = provider() else { return };
    let app = app(pool.clone(), &provider).await;
    let tokens = log_in_through_provider(&app, "alice").await;

    let me = app.get_as("/api/v1/me", &tokens.access).await.json();
    let logged_in = audit::event(&pool, "auth.oidc.login.succeeded").await;
    assert_eq!(logged_in.actor_id.as_deref(), me["subject"].as_str(), "the audit trail names the account");
    assert_eq!(logged_in.actor_method.as_deref(), Some("oidc"));
    assert_eq!(me["auth_method"], "oidc");
    assert_eq!(me["account"]["email"], "alice@example.com");
    assert_eq!(me["account"]["display_name"], "Test alice");
    assert_eq!(app.refresh(&tokens.refresh).await.status, StatusCode::OK, "a normal session");

    let again = log_in_through_provider(&app, "alice").await;
    let me_again = app.get_as("/api/v1/me", &again.access).await.json();
    assert_eq!(me_again["subject"], me["subject"], "the identity stays linked to one account");
}

/// What the callback answers when the state is the problem, and when the
/// provider's side is: tests tell them apart by message, so that a refusal
/// for one reason cannot pass for the other.
const STATE_REFUSED: &str = "The login expired or began elsewhere; start again.";
const PROVIDER_REFUSED: &str = "The identity provider did not complete the login; start again.";

fn query_param(path: &str, name: &str) -> String {
    let url = url::Url::parse(&format!("{PUBLIC_URL}{path}")).expect("url");
    url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned()).expect("parameter")
}

#[sqlx::test]
async fn the_login_state_works_once_and_only_in_the_browser_that_started_it(pool: Pool) {
    let Some(provider) = provider() else { return };
    let app = app(pool.clone(), &provider).await;
    let refused_state = |response: TestResponse| {
        let error = response.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        assert_eq!(error["message"], STATE_REFUSED);
    };

    let (path, _cookie) = sign_in_at_provider(&app, "alice").await;
    refused_state(callback(&app, &path, Some("__Host-oidc-login=someone-else")).await);

    let (first, cookie) = sign_in_at_provider(&app, "alice").await;
    assert_eq!(callback(&app, &first, Some(&cookie)).await.status, StatusCode::OK);
    // The used state again, with a fresh code the provider issued: were the
    // state still remembered, the code would reach the provider, which
    // refuses it for another reason (its PKCE challenge).
    let (fresh, _) = sign_in_at_provider(&app, "alice").await;
    let replay = format!(
        "/api/v1/auth/oidc/callback?code={}&state={}",
        query_param(&fresh, "code"),
        query_param(&first, "state")
    );
    refused_state(callback(&app, &replay, Some(&cookie)).await);

    refused_state(callback(&app, "/api/v1/auth/oidc/callback?code=x&state=made-up", Some(&cookie)).await);
    let failed = audit::events(&pool, "auth.oidc.login.failed", 3).await;
    assert!(failed.iter().all(|row| audit::details(row)["reason"] == "invalid_state"), "{failed:?}");
}

/// Pre-registration takeover: anyone can register an address they do not
/// own. When the owner later logs in at the provider, the identity must not
/// join the squatter's account (whose password would keep working), so an
/// account with a password whose address this service never verified is
/// not linked by email, whatever the provider says.
#[sqlx::test]
async fn a_password_account_is_never_linked_by_email_alone(pool: Pool) {
    let Some(provider) = provider() else { return };
    let app = app(pool.clone(), &provider).await;
    app.register_unverified("carol@example.com").await;
    let (path, cookie) = sign_in_at_provider(&app, "carol").await;
    let refused = callback(&app, &path, Some(&cookie)).await;
    let error = refused.assert_error(StatusCode::CONFLICT, "CONFLICT");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("link")), "{error}");
    let links: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM user_identities").fetch_one(&pool).await.expect("count");
    assert_eq!(links, 0);
}

/// Automatic linking by a provider-verified email happens only for an
/// account without a password, or one whose address this service verified;
/// it ends every session the account had.
#[sqlx::test]
async fn accounts_without_a_password_or_verified_here_link_by_verified_email(pool: Pool) {
    let Some(provider) = provider() else { return };
    let app = app(pool.clone(), &provider).await;
    // dan@example.com exists through the provider only; "dan+work" is a
    // second identity with the same verified address.
    let subject = |token: &str| {
        let app = &app;
        let token = token.to_owned();
        async move { app.get_as("/api/v1/me", &token).await.json()["subject"].clone() }
    };
    let first = log_in_through_provider(&app, "dan").await;
    let dan = subject(&first.access).await;
    let second = log_in_through_provider(&app, "dan+work").await;
    assert_eq!(subject(&second.access).await, dan);
    app.refresh(&first.refresh).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN");
    app.get_as("/api/v1/me", &first.access).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");

    let erin = app.register("erin@example.com").await;
    sqlx::query("UPDATE users SET email_verified_at = created_at WHERE email = 'erin@example.com'")
        .execute(&pool)
        .await
        .expect("verified here");
    let linked = log_in_through_provider(&app, "erin").await;
    assert_eq!(subject(&linked.access).await, erin["id"]);
}

/// The safe way to link a password account: log in, then link while
/// authenticated. The login at the provider is bound to this browser and to
/// the caller's account; linking ends every other session of the account.
#[sqlx::test]
async fn linking_while_logged_in_joins_the_identity_and_ends_other_sessions(pool: Pool) {
    let Some(provider) = provider() else { return };
    let app = app(pool.clone(), &provider).await;
    let carol = app.register("carol@example.com").await;
    let before = app.login("carol@example.com", PASSWORD).await;

    let start = app.post("/api/v1/auth/oidc/link", Some(&before.access), &json!({})).await;
    assert_eq!(start.status, StatusCode::OK, "{}", String::from_utf8_lossy(&start.body));
    let cookie = start.header("set-cookie").split(';').next().expect("cookie").to_owned();
    let location = start.json()["location"].as_str().expect("location").to_owned();
    let path = browse_to_callback(&location, "carol-at-work").await;
    let linked = callback(&app, &path, Some(&cookie)).await;
    assert_eq!(linked.status, StatusCode::OK, "{}", String::from_utf8_lossy(&linked.body));
    let pair = linked.json();
    let me = app.get_as("/api/v1/me", pair["access_token"].as_str().expect("token")).await.json();
    assert_eq!(me["subject"], carol["id"]);
    let link = audit::event(&pool, "account.identity_linked").await;
    assert_eq!(link.target_id.as_deref(), carol["id"].as_str());
    assert_eq!(audit::details(&link)["by"], "signed_in");

    app.refresh(&before.refresh).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN");
    app.get_as("/api/v1/me", &before.access).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    let again = log_in_through_provider(&app, "carol-at-work").await;
    assert_eq!(app.get_as("/api/v1/me", &again.access).await.json()["subject"], carol["id"]);
    app.login("carol@example.com", PASSWORD).await;

    // An identity linked to one account cannot be linked to another.
    let other = app.signed_up("frank@example.com").await;
    let start = app.post("/api/v1/auth/oidc/link", Some(&other.access), &json!({})).await;
    let cookie = start.header("set-cookie").split(';').next().expect("cookie").to_owned();
    let path =
        browse_to_callback(start.json()["location"].as_str().expect("location"), "carol-at-work").await;
    callback(&app, &path, Some(&cookie)).await.assert_error(StatusCode::CONFLICT, "CONFLICT");
}

/// Provider-issued access tokens of a linked account meet the same account
/// check as this service's own: disabled means refused, roles and all.
#[sqlx::test]
async fn a_disabled_account_is_refused_through_provider_tokens(pool: Pool) {
    let Some(provider) = provider() else { return };
    let app = app(pool.clone(), &provider).await;
    log_in_through_provider(&app, "admin-eve").await;
    let token = provider_access_token(&provider, "admin-eve").await;
    let me = app.get_as("/api/v1/me", &token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", String::from_utf8_lossy(&me.body));
    assert_eq!(me.json()["auth_method"], "provider_token");
    assert_eq!(me.json()["roles"], json!(["user", "admin"]), "api-admins maps to admin");

    // Disabled behind this instance's back, as another instance would: it
    // shows once the remembered account state expires.
    sqlx::query("UPDATE users SET disabled_at = created_at WHERE email = 'admin-eve@example.com'")
        .execute(&pool)
        .await
        .expect("disable");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    app.get_as("/api/v1/me", &token).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    app.get_as("/api/v1/admin/users", &token).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
}

#[sqlx::test]
async fn an_unverified_email_never_takes_over_an_account(pool: Pool) {
    let Some(provider) = provider() else { return };
    let app = app(pool, &provider).await;
    app.register("unverified-dave@example.com").await;
    let (path, cookie) = sign_in_at_provider(&app, "unverified-dave").await;
    callback(&app, &path, Some(&cookie)).await.assert_error(StatusCode::CONFLICT, "CONFLICT");
}

/// Service to service: a token the provider issued to another service, by
/// the client-credentials grant, is accepted with its scopes, and the
/// provider's role names are mapped onto this service's roles.
#[sqlx::test]
async fn client_credentials_tokens_are_accepted_with_their_scopes(pool: Pool) {
    let Some(provider) = provider() else { return };
    let app = app(pool, &provider).await;
    let token = client_credentials_token(&provider, PUBLIC_URL).await;
    let me = app.get_as("/api/v1/me", &token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", String::from_utf8_lossy(&me.body));
    let me = me.json();
    assert_eq!(me["auth_method"], "client_credentials");
    assert_eq!(me["subject"], "reporting-service");
    assert_eq!(me["scopes"], json!(["notes:read"]));
    assert_eq!(me["roles"], json!(["admin"]), "api-admins maps to admin");
    assert_eq!(me["account"], Value::Null);

    let needs_account = app.post("/api/v1/auth/logout-all", Some(&token), &json!({})).await;
    needs_account.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[sqlx::test]
async fn provider_tokens_for_another_api_are_refused(pool: Pool) {
    let Some(provider) = provider() else { return };
    let app = app(pool, &provider).await;
    let token = client_credentials_token(&provider, OTHER_AUDIENCE).await;
    let response = app.get_as("/api/v1/me", &token).await;
    response.assert_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
}

#[sqlx::test]
async fn without_a_provider_the_login_routes_do_not_exist(pool: Pool) {
    let app = TestApp::new(pool).await;
    app.get("/api/v1/auth/oidc/login").await.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

/// Provider key rotation, with a stand-in that serves only discovery and
/// the key set, so that the test decides when the provider's keys change.
mod provider_keys {
    use std::{
        net::SocketAddr,
        sync::{
            Arc, Mutex,
            atomic::{AtomicBool, AtomicUsize, Ordering},
        },
        time::Duration,
    };

    use app::auth::oidc::{
        outbound::{Outbound, Timeouts},
        provider::{KeyTiming, Provider},
    };
    use axum::{
        Json, Router,
        extract::State,
        http::StatusCode,
        routing::{get, post},
    };
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::{Value, json};

    #[derive(Clone, Default)]
    struct StandIn {
        issuer: Arc<Mutex<String>>,
        keys: Arc<Mutex<Vec<Value>>>,
        fetches: Arc<AtomicUsize>,
        /// When set, the key set answers 503.
        failing: Arc<AtomicBool>,
        /// How long the key set takes to answer.
        delay: Arc<Mutex<Duration>>,
        /// The ID token the token endpoint answers with.
        id_token: Arc<Mutex<Option<String>>>,
    }

    #[derive(Clone)]
    struct Key {
        kid: String,
        jwk: Value,
        encoding: EncodingKey,
    }

    fn key(kid: &str) -> Key {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
        let x = URL_SAFE_NO_PAD.encode(pair.public_key_raw());
        Key {
            kid: kid.to_owned(),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
            encoding: EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes()).expect("pem"),
        }
    }

    async fn serve(stand_in: StandIn) -> SocketAddr {
        #[expect(clippy::disallowed_methods, reason = "a stand-in provider, not an API operation")]
        let router = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(|State(s): State<StandIn>| async move {
                    let issuer = s.issuer.lock().expect("lock").clone();
                    Json(json!({
                        "issuer": issuer,
                        "authorization_endpoint": format!("{issuer}/auth"),
                        "token_endpoint": format!("{issuer}/token"),
                        "jwks_uri": format!("{issuer}/jwks"),
                    }))
                }),
            )
            .route(
                "/jwks",
                get(|State(s): State<StandIn>| async move {
                    s.fetches.fetch_add(1, Ordering::SeqCst);
                    let delay = *s.delay.lock().expect("lock");
                    tokio::time::sleep(delay).await;
                    if s.failing.load(Ordering::SeqCst) {
                        return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                    }
                    Ok(Json(json!({"keys": *s.keys.lock().expect("lock")})))
                }),
            )
            .route(
                "/token",
                post(|State(s): State<StandIn>| async move {
                    let id_token = s.id_token.lock().expect("lock").clone();
                    Json(json!({"access_token": "stand-in", "token_type": "Bearer", "id_token": id_token}))
                }),
            )
            .route("/stall", get(|| async { tokio::time::sleep(Duration::from_secs(30)).await }))
            .route("/huge", get(|| async { Json(json!({"padding": "x".repeat(300 * 1024)})) }))
            .route("/elsewhere", get(|| async { axum::response::Redirect::temporary("/jwks") }))
            .with_state(stand_in);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    }

    fn token(key: &Key, issuer: &str) -> String {
        token_with(key, issuer, |_| {})
    }

    /// A provider access token signed by `key`, with `change` applied to
    /// its claims.
    fn token_with(key: &Key, issuer: &str, change: impl FnOnce(&mut Value)) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(key.kid.clone());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut claims =
            json!({"iss": issuer, "aud": "https://api.test", "sub": "svc", "exp": now + 300, "iat": now});
        change(&mut claims);
        jsonwebtoken::encode(&header, &claims, &key.encoding).expect("sign")
    }

    /// A stand-in serving `keys`, and a provider client for it.
    async fn stand_in_with(keys: &[&Key], timing: KeyTiming) -> (StandIn, Provider, String) {
        let stand_in = StandIn::default();
        let addr = serve(stand_in.clone()).await;
        let issuer = format!("http://{addr}");
        stand_in.issuer.lock().expect("lock").clone_from(&issuer);
        stand_in.keys.lock().expect("lock").extend(keys.iter().map(|key| key.jwk.clone()));
        let outbound = Outbound::new(true, Timeouts::default()).expect("client");
        let provider = Provider::new(issuer.clone(), vec![Algorithm::EdDSA], outbound, timing);
        (stand_in, provider, issuer)
    }

    /// The ID token of a login must be for this login, for this client, from
    /// the provider's key: a stand-in token endpoint answers the callback's
    /// code exchange with a token that breaks one rule at a time, beside a
    /// control that breaks none.
    #[sqlx::test]
    async fn id_tokens_with_a_wrong_nonce_audience_party_or_key_are_refused(pool: app::db::Pool) {
        let signer = key("signer");
        let foreign = Key { kid: "signer".to_owned(), ..key("foreign") };
        let (stand_in, _provider, issuer) = stand_in_with(&[&signer], slow_to_refetch()).await;
        let config = crate::helpers::config_with(|figment| {
            figment.merge(("oidc.issuer", &issuer)).merge(("oidc.client_id", "api-login"))
        });
        let app = crate::helpers::TestApp::with_config(pool, config).await;
        let attempt = |key: &Key, change: fn(&mut Value)| {
            let (app, stand_in, issuer) = (&app, &stand_in, &issuer);
            let key = key.clone();
            async move {
                let start = app.get("/api/v1/auth/oidc/login").await;
                assert_eq!(start.status, StatusCode::FOUND);
                let cookie = start.header("set-cookie").split(';').next().expect("cookie").to_owned();
                let location = url::Url::parse(start.header("location")).expect("location");
                let param = |name: &str| {
                    location.query_pairs().find(|(key, _)| key == name).expect("param").1.into_owned()
                };
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let mut claims = json!({
                    "iss": issuer, "sub": "alice", "aud": "api-login", "exp": now + 300, "iat": now,
                    "nonce": param("nonce"), "email": "alice@example.com", "email_verified": true,
                });
                change(&mut claims);
                let mut header = Header::new(Algorithm::EdDSA);
                header.kid = Some(key.kid.clone());
                let token = jsonwebtoken::encode(&header, &claims, &key.encoding).expect("sign");
                *stand_in.id_token.lock().expect("lock") = Some(token);
                let path = format!("/api/v1/auth/oidc/callback?code=stand-in-code&state={}", param("state"));
                super::callback(app, &path, Some(&cookie)).await
            }
        };
        let refused = |response: crate::helpers::TestResponse, case: &str| {
            let error = response.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
            assert_eq!(error["message"], super::PROVIDER_REFUSED, "{case}");
        };

        assert_eq!(attempt(&signer, |_| {}).await.status, StatusCode::OK, "the control");
        refused(attempt(&signer, |claims| claims["nonce"] = json!("another login's nonce")).await, "nonce");
        refused(attempt(&signer, |claims| claims["aud"] = json!("another-client")).await, "audience");
        refused(attempt(&foreign, |_| {}).await, "a key the provider never published");
        let shared = |claims: &mut Value| claims["aud"] = json!(["api-login", "another-client"]);
        refused(attempt(&signer, shared).await, "several audiences, no azp");
        let named = |claims: &mut Value| {
            claims["aud"] = json!(["api-login", "another-client"]);
            claims["azp"] = json!("another-client");
        };
        refused(attempt(&signer, named).await, "several audiences, issued to another party");
        let ours = |claims: &mut Value| {
            claims["aud"] = json!(["api-login", "another-client"]);
            claims["azp"] = json!("api-login");
        };
        assert_eq!(attempt(&signer, ours).await.status, StatusCode::OK, "azp names this client");
    }

    /// A provider that stalls is given up on after the configured timeout.
    #[tokio::test]
    async fn a_stalling_provider_is_given_up_on_after_the_timeout() {
        let addr = serve(StandIn::default()).await;
        let timeouts = Timeouts { connect: Duration::from_secs(1), total: Duration::from_secs(1) };
        let outbound = Outbound::new(true, timeouts).expect("client");
        let url = url::Url::parse(&format!("http://{addr}/stall")).expect("url");
        let started = std::time::Instant::now();
        assert!(outbound.get_json::<Value>(&url).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(3), "waited {:?}", started.elapsed());
    }

    /// Anonymous requests create pending logins, so their number is capped:
    /// over the cap, a new login is shed with 503 and `Retry-After`.
    #[sqlx::test]
    async fn pending_logins_are_capped(pool: app::db::Pool) {
        let (_stand_in, _provider, issuer) = stand_in_with(&[], slow_to_refetch()).await;
        let config = crate::helpers::config_with(|figment| {
            figment
                .merge(("oidc.issuer", &issuer))
                .merge(("oidc.client_id", "api-login"))
                .merge(("oidc.max_pending_logins", 2))
        });
        let app = crate::helpers::TestApp::with_config(pool, config).await;
        for _ in 0..2 {
            assert_eq!(app.get("/api/v1/auth/oidc/login").await.status, axum::http::StatusCode::FOUND);
        }
        let shed = app.get("/api/v1/auth/oidc/login").await;
        shed.assert_error(axum::http::StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
        assert_eq!(shed.header("retry-after"), "1");
    }

    /// The PKCE verifier a pending login keeps is sealed at rest (its S256
    /// is the challenge the provider was sent), and a key rotation
    /// re-encrypts it so that the login can still finish.
    #[sqlx::test]
    async fn pending_logins_keep_their_pkce_verifier_sealed_through_a_rotation(pool: app::db::Pool) {
        use app::encryption::{DataKeys, Field};
        use base64::Engine;
        use sha2::Digest;

        const KEY_A: &str = "a:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        const KEY_B: &str = "b:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        const VERIFIER: Field = Field { table: "oidc_logins", column: "pkce_verifier" };
        let (_stand_in, _provider, issuer) = stand_in_with(&[], slow_to_refetch()).await;
        let config = crate::helpers::config_with(|figment| {
            figment
                .merge(("oidc.issuer", &issuer))
                .merge(("oidc.client_id", "api-login"))
                .merge(("encryption.keys", KEY_A))
        });
        let app = crate::helpers::TestApp::with_config(pool.clone(), config).await;
        let start = app.get("/api/v1/auth/oidc/login").await;
        let location = url::Url::parse(start.header("location")).expect("location");
        let challenge = location.query_pairs().find(|(name, _)| name == "code_challenge").expect("PKCE").1;
        let (state_hash, stored): (Vec<u8>, String) =
            sqlx::query_as("SELECT state_hash, pkce_verifier FROM oidc_logins")
                .fetch_one(&pool)
                .await
                .expect("row");
        assert!(stored.starts_with("enc1:a:"), "{stored}");
        let s256 = |verifier: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
        };
        let keys = DataKeys::parse(&format!("{KEY_B} {KEY_A}")).expect("keys");
        assert_eq!(s256(&keys.open(VERIFIER, &state_hash, &stored).expect("opens")), challenge);

        let resealed = app::auth::oidc::login::reseal_pending(&pool, &keys, 10).await.expect("rotates");
        assert_eq!(resealed, 1);
        let rotated: String =
            sqlx::query_scalar("SELECT pkce_verifier FROM oidc_logins").fetch_one(&pool).await.expect("row");
        let new_only = DataKeys::parse(KEY_B).expect("keys");
        assert_eq!(s256(&new_only.open(VERIFIER, &state_hash, &rotated).expect("opens")), challenge);
    }

    /// Timing that never refetches within a test.
    fn slow_to_refetch() -> KeyTiming {
        KeyTiming { min_refresh_interval: Duration::from_mins(1), max_age: Duration::from_hours(1) }
    }

    /// A key set that cannot be fetched is not asked for again at each
    /// token with an invented `kid`: the attempt counts, success or not.
    #[tokio::test]
    async fn a_failing_key_set_is_not_refetched_for_every_invented_kid() {
        let real = key("real");
        let (stand_in, provider, issuer) = stand_in_with(&[&real], slow_to_refetch()).await;
        stand_in.failing.store(true, Ordering::SeqCst);
        for kid in ["made-up-1", "made-up-2", "made-up-3"] {
            assert!(
                provider.verify::<Value>(&token(&key(kid), &issuer), "https://api.test", true).await.is_err()
            );
        }
        assert_eq!(stand_in.fetches.load(Ordering::SeqCst), 1, "one attempt per interval, failed or not");
    }

    #[tokio::test]
    async fn provider_tokens_not_yet_valid_are_refused() {
        let real = key("real");
        let (_stand_in, provider, issuer) = stand_in_with(&[&real], slow_to_refetch()).await;
        provider
            .verify::<Value>(&token(&real, &issuer), "https://api.test", true)
            .await
            .expect("the control");
        let later = token_with(&real, &issuer, |claims| {
            claims["nbf"] = json!(time::OffsetDateTime::now_utc().unix_timestamp() + 300);
        });
        assert!(
            provider.verify::<Value>(&later, "https://api.test", true).await.is_err(),
            "nbf in the future"
        );
    }

    /// Once the key set is older than its maximum age it is fetched again,
    /// in the background: a key the provider withdrew stops being trusted,
    /// and the fetch, however slow, never holds up tokens whose key is known.
    #[tokio::test]
    async fn withdrawn_keys_stop_being_trusted_and_refetches_never_stall_known_keys() {
        let (kept, withdrawn) = (key("kept"), key("withdrawn"));
        let timing = KeyTiming {
            min_refresh_interval: Duration::from_millis(100),
            max_age: Duration::from_millis(300),
        };
        let (stand_in, provider, issuer) = stand_in_with(&[&kept, &withdrawn], timing).await;
        let verify = |key: &Key| {
            let (provider, token) = (&provider, token(key, &issuer));
            async move { provider.verify::<Value>(&token, "https://api.test", true).await }
        };
        verify(&withdrawn).await.expect("published at first");

        *stand_in.keys.lock().expect("lock") = vec![kept.jwk.clone()];
        *stand_in.delay.lock().expect("lock") = Duration::from_secs(1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let started = std::time::Instant::now();
        verify(&kept).await.expect("a stale set still serves while the fresh one is fetched");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "waited {:?} for the fetch",
            started.elapsed()
        );

        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while verify(&withdrawn).await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "the withdrawn key is still trusted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        verify(&kept).await.expect("the kept key still verifies");
    }

    /// A key published for encryption, or for another algorithm, never
    /// verifies a signature.
    #[tokio::test]
    async fn keys_published_for_another_use_or_algorithm_verify_nothing() {
        let (mut encryption, mut other_alg) = (key("encryption"), key("other-alg"));
        encryption.jwk["use"] = json!("enc");
        other_alg.jwk["alg"] = json!("ES256");
        let (_stand_in, provider, issuer) =
            stand_in_with(&[&encryption, &other_alg], slow_to_refetch()).await;
        for key in [&encryption, &other_alg] {
            let refused = provider.verify::<Value>(&token(key, &issuer), "https://api.test", true).await;
            assert!(refused.is_err(), "{} verified a token", key.kid);
        }
    }

    #[tokio::test]
    async fn an_unknown_kid_refreshes_the_keys_at_most_once_per_interval() {
        let stand_in = StandIn::default();
        let addr = serve(stand_in.clone()).await;
        let issuer = format!("http://{addr}");
        *stand_in.issuer.lock().expect("lock") = issuer.clone();
        let (old, new) = (key("old"), key("new"));
        stand_in.keys.lock().expect("lock").push(old.jwk.clone());
        let interval = Duration::from_millis(500);
        let outbound = Outbound::new(true, Timeouts::default()).expect("client");
        let timing = KeyTiming { min_refresh_interval: interval, max_age: Duration::from_hours(1) };
        let provider = Provider::new(issuer.clone(), vec![Algorithm::EdDSA], outbound, timing);
        let verify = |token: String| {
            let provider = &provider;
            async move { provider.verify::<Value>(&token, "https://api.test", true).await }
        };
        let fetches = || stand_in.fetches.load(Ordering::SeqCst);

        verify(token(&old, &issuer)).await.expect("the known key verifies");
        assert_eq!(fetches(), 1);
        stand_in.keys.lock().expect("lock").push(new.jwk.clone());
        assert!(verify(token(&new, &issuer)).await.is_err(), "within the interval: no refetch");
        assert!(verify(token(&new, &issuer)).await.is_err());
        assert_eq!(fetches(), 1, "made-up kids cannot make the service hammer the provider");

        tokio::time::sleep(interval + Duration::from_millis(100)).await;
        verify(token(&new, &issuer)).await.expect("after the interval the rotated key is fetched");
        verify(token(&new, &issuer)).await.expect("and cached");
        assert_eq!(fetches(), 2);
    }

    #[tokio::test]
    async fn outbound_calls_are_capped_and_never_follow_redirects() {
        let addr = serve(StandIn::default()).await;
        let outbound = Outbound::new(true, Timeouts::default()).expect("client");
        let url = |path: &str| url::Url::parse(&format!("http://{addr}{path}")).expect("url");
        let huge = outbound.get_json::<Value>(&url("/huge")).await.expect_err("over the size cap");
        assert!(huge.to_string().contains("exceeds"), "{huge}");
        let redirected = outbound.get_json::<Value>(&url("/elsewhere")).await.expect_err("a redirect");
        assert!(redirected.to_string().contains("307"), "{redirected}");
        let production = Outbound::new(false, Timeouts::default()).expect("client");
        assert!(production.get_json::<Value>(&url("/jwks")).await.is_err(), "no plain HTTP in production");
    }
}
