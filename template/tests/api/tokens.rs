//! Access-token verification: every way a forged, stale or misdirected token
//! can arrive is refused with 401 `invalid_token`, each case its own test.

use app::{
    auth::keys::{Rotation, rotate},
    db::Pool,
};
use axum::http::StatusCode;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, claims_of, config, config_with, signing_keys};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A registered user and one of their live sessions.
struct Session {
    user: String,
    sid: String,
}

/// Claims exactly like the service's own, for `session`.
fn claims(session: &Session) -> Value {
    let config = config();
    json!({
        "iss": config.issuer(),
        "aud": config.audience(),
        "sub": session.user,
        "iat": now(),
        "nbf": now(),
        "exp": now() + 600,
        "jti": "test",
        "sid": session.sid,
        "roles": ["user"],
        "scope": "notes:read",
        "amr": ["pwd"],
    })
}

fn header(typ: &str, kid: &str) -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(typ.to_owned());
    header.kid = Some(kid.to_owned());
    header
}

/// Signs with the service's real signing key.
fn sign(header: &Header, claims: &Value) -> String {
    jsonwebtoken::encode(header, claims, signing_keys().signing_key()).expect("sign")
}

fn kid() -> String {
    signing_keys().signing_kid().to_owned()
}

/// The app, and a session of a registered user.
async fn setup(pool: Pool) -> (TestApp, Session) {
    let app = TestApp::new(pool).await;
    let issued = claims_of(&app.signed_up("ann@example.com").await.access);
    let session = Session {
        user: issued["sub"].as_str().expect("sub").to_owned(),
        sid: issued["sid"].as_str().expect("sid").to_owned(),
    };
    (app, session)
}

async fn assert_refused(app: &TestApp, token: &str) {
    let response = app.get_as("/api/v1/me", token).await;
    response.assert_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    assert_eq!(response.header("www-authenticate"), "Bearer error=\"invalid_token\"");
}

/// The control: the forging helpers make tokens the service accepts, so each
/// refusal below is due to the one thing that test changed.
#[sqlx::test]
async fn a_well_formed_token_is_accepted(pool: Pool) {
    let (app, user) = setup(pool).await;
    let token = sign(&header("at+jwt", &kid()), &claims(&user));
    assert_eq!(app.get_as("/api/v1/me", &token).await.status, StatusCode::OK);
}

#[sqlx::test]
async fn alg_none_is_refused(pool: Pool) {
    let (app, user) = setup(pool).await;
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let token = format!(
        "{}.{}.",
        encode(&json!({"alg": "none", "typ": "at+jwt", "kid": kid()})),
        encode(&claims(&user))
    );
    assert_refused(&app, &token).await;
}

/// The classic key-confusion attack: HMAC keyed with the public key.
#[sqlx::test]
async fn hs256_signed_with_the_public_key_is_refused(pool: Pool) {
    let (app, user) = setup(pool).await;
    let public = serde_json::to_value(&signing_keys().jwks().keys[0]).expect("jwk");
    let public_key = URL_SAFE_NO_PAD.decode(public["x"].as_str().expect("x")).expect("base64");
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.typ = Some("at+jwt".to_owned());
    hs256.kid = Some(kid());
    let token = jsonwebtoken::encode(
        &hs256,
        &claims(&user),
        &EncodingKey::from_secret(&public_key).expect("hmac key"),
    )
    .expect("sign");
    assert_refused(&app, &token).await;
}

#[sqlx::test]
async fn an_expired_token_is_refused(pool: Pool) {
    let (app, user) = setup(pool).await;
    let mut claims = claims(&user);
    claims["iat"] = json!(now() - 3600);
    claims["nbf"] = json!(now() - 3600);
    claims["exp"] = json!(now() - 120);
    assert_refused(&app, &sign(&header("at+jwt", &kid()), &claims)).await;
}

#[sqlx::test]
async fn a_token_not_yet_valid_is_refused(pool: Pool) {
    let (app, user) = setup(pool).await;
    let mut claims = claims(&user);
    claims["nbf"] = json!(now() + 300);
    assert_refused(&app, &sign(&header("at+jwt", &kid()), &claims)).await;
}

#[sqlx::test]
async fn a_token_from_another_issuer_is_refused(pool: Pool) {
    let (app, user) = setup(pool).await;
    let mut claims = claims(&user);
    claims["iss"] = json!("https://evil.example");
    assert_refused(&app, &sign(&header("at+jwt", &kid()), &claims)).await;
}

#[sqlx::test]
async fn a_token_for_another_audience_is_refused(pool: Pool) {
    let (app, user) = setup(pool).await;
    let mut claims = claims(&user);
    claims["aud"] = json!("https://other-api.example");
    assert_refused(&app, &sign(&header("at+jwt", &kid()), &claims)).await;
}

#[sqlx::test]
async fn an_unknown_kid_is_refused(pool: Pool) {
    let (app, user) = setup(pool).await;
    assert_refused(&app, &sign(&header("at+jwt", "no-such-key"), &claims(&user))).await;
}

#[sqlx::test]
async fn a_tampered_payload_is_refused(pool: Pool) {
    let (app, user) = setup(pool).await;
    let token = sign(&header("at+jwt", &kid()), &claims(&user));
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64")).expect("json");
    payload["roles"] = json!(["admin"]);
    let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2]);
    assert_refused(&app, &forged).await;
}

#[sqlx::test]
async fn a_token_signed_by_another_key_is_refused(pool: Pool) {
    let (app, user) = setup(pool).await;
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let other = EncodingKey::from_ed_pem(other.serialize_pem().as_bytes()).expect("pem");
    let token = jsonwebtoken::encode(&header("at+jwt", &kid()), &claims(&user), &other).expect("sign");
    assert_refused(&app, &token).await;
}

/// An ID token proves a login to a client; it must never open the API. Its
/// `typ` is `JWT`, which alone refuses it, whatever its audience.
#[sqlx::test]
async fn an_id_token_replayed_as_an_access_token_is_refused(pool: Pool) {
    let (app, user) = setup(pool).await;
    let mut id_token = claims(&user);
    id_token["aud"] = json!("some-client-id");
    id_token["nonce"] = json!("n-0S6_WzA2Mj");
    assert_refused(&app, &sign(&header("JWT", &kid()), &id_token)).await;
    let same_audience = claims(&user);
    assert_refused(&app, &sign(&header("JWT", &kid()), &same_audience)).await;
}

#[sqlx::test]
async fn a_malformed_authorization_header_is_refused(pool: Pool) {
    let (app, _) = setup(pool).await;
    for token in ["", "not-a-jwt", "a.b.c"] {
        assert_refused(&app, token).await;
    }
}

/// What other services verify our tokens with: exactly the signing key, as
/// a public key that verifies a token this service issued.
#[sqlx::test]
async fn the_jwks_publishes_the_public_key_that_verifies_issued_tokens(pool: Pool) {
    let app = TestApp::new(pool).await;
    let token = app.signed_up("ann@example.com").await.access;
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("cache-control"), "public, max-age=300");
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&response.body).expect("a JWK set");
    assert_eq!(jwks.keys.len(), 1, "one key: the signing key");
    let key = &jwks.keys[0];
    assert_eq!(key.common.key_id.as_deref(), Some(kid().as_str()));
    let public = jsonwebtoken::DecodingKey::from_jwk(key).expect("a public key");
    let config = config();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[config.audience()]);
    validation.set_issuer(&[config.issuer()]);
    let verified = jsonwebtoken::decode::<Value>(&token, &public, &validation).expect("verifies");
    assert_eq!(verified.claims["sub"], claims_of(&token)["sub"]);
}

/// After a rotation, tokens signed with the old key keep working until they
/// expire, new tokens carry the new key's id, and the JWKS lists both.
#[sqlx::test]
async fn tokens_signed_before_a_rotation_keep_verifying(pool: Pool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let with_keys = |figment: figment::Figment| figment.merge(("auth.keys_dir", dir.path()));
    let before = TestApp::with_config(pool.clone(), config_with(with_keys)).await;
    let old = before.signed_up("ann@example.com").await;

    let ttl = config().auth.access_token_ttl;
    rotate(dir.path(), Rotation::StageAndPromote, ttl).expect("rotate");
    let after = TestApp::with_config(pool, config_with(with_keys)).await;

    assert_eq!(after.get_as("/api/v1/me", &old.access).await.status, StatusCode::OK);
    let new = after.login("ann@example.com", crate::helpers::PASSWORD).await;
    let kid_of = |token: &str| jsonwebtoken::decode_header(token).expect("header").kid.expect("kid");
    assert_ne!(kid_of(&new.access), kid_of(&old.access));
    let jwks = after.get("/.well-known/jwks.json").await.json();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
}

/// What the service issues: the RFC 9068 profile, EdDSA with our key id,
/// and every claim a verifier needs, living `auth.access_token_ttl_secs`.
#[sqlx::test]
async fn issued_access_tokens_carry_the_rfc_9068_header_and_claims(pool: Pool) {
    let app = TestApp::new(pool).await;
    let tokens = app.signed_up("ann@example.com").await;
    let header = jsonwebtoken::decode_header(&tokens.access).expect("header");
    assert_eq!(
        (header.alg, header.typ.as_deref(), header.kid),
        (Algorithm::EdDSA, Some("at+jwt"), Some(kid()))
    );
    let claims = claims_of(&tokens.access);
    let config = config();
    assert_eq!(claims["iss"], config.issuer().as_str());
    assert_eq!(claims["aud"], config.audience().as_str());
    assert!(claims["sub"].as_str().is_some_and(|sub| uuid::Uuid::parse_str(sub).is_ok()));
    assert!(claims["jti"].as_str().is_some_and(|jti| !jti.is_empty()));
    assert!(claims["sid"].as_str().is_some_and(|sid| uuid::Uuid::parse_str(sid).is_ok()), "the session");
    assert_eq!(claims["roles"], json!(["user"]));
    assert_eq!(claims["scope"], app::authz::scopes_for(&[app::authz::Role::User]).join(" "));
    assert_eq!(claims["amr"], json!(["pwd"]));
    let (iat, nbf, exp) = (claims["iat"].as_i64(), claims["nbf"].as_i64(), claims["exp"].as_i64());
    assert_eq!(nbf, iat);
    assert_eq!(exp.zip(iat).map(|(exp, iat)| exp - iat), Some(900), "15 minutes");
}

/// A token's roles and scopes are what the account holds now: a token that
/// claims more (here, signed by our own key, as a token issued before a
/// demotion would be) grants no more.
#[sqlx::test]
async fn roles_and_scopes_come_from_the_account_not_the_token(pool: Pool) {
    let (app, user) = setup(pool).await;
    let mut claims = claims(&user);
    claims["roles"] = json!(["user", "admin"]);
    claims["scope"] = json!("notes:read users:admin");
    let token = sign(&header("at+jwt", &kid()), &claims);
    let me = app.get_as("/api/v1/me", &token).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["roles"], json!(["user"]));
    assert_eq!(me.json()["scopes"], json!(["notes:read"]), "the issued scopes the current roles allow");
    app.get_as("/api/v1/admin/users", &token).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
}

/// An access token lives only as long as its session: a well-signed token
/// naming a session that is not (or no longer) live is refused.
#[sqlx::test]
async fn a_token_of_an_ended_or_unknown_session_is_refused(pool: Pool) {
    let (app, session) = setup(pool).await;
    let unknown = Session { user: session.user.clone(), sid: uuid::Uuid::new_v4().to_string() };
    assert_refused(&app, &sign(&header("at+jwt", &kid()), &claims(&unknown))).await;
    let token = sign(&header("at+jwt", &kid()), &claims(&session));
    assert_eq!(app.get_as("/api/v1/me", &token).await.status, StatusCode::OK, "the control");
    app.post("/api/v1/auth/logout-all", Some(&token), &json!({})).await;
    assert_refused(&app, &token).await;
}
