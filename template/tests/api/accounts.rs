//! Local accounts: registration, login, lockout, password changes.

use std::time::{Duration, Instant};

use app::db::Pool;
use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, config_with};

#[sqlx::test]
async fn registration_returns_the_public_account_and_never_the_hash(pool: Pool) {
    let app = TestApp::new(pool).await;
    let body = json!({"email": " Ann.Lee@Example.COM ", "password": PASSWORD, "display_name": "Ann"});
    let response = app.post("/api/v1/auth/register", None, &body).await;
    assert_eq!(response.status, StatusCode::CREATED);
    let account = response.json();
    assert_eq!(account["email"], "ann.lee@example.com", "normalized");
    assert_eq!(account["roles"], json!(["user"]));
    let text = String::from_utf8_lossy(&response.body);
    assert!(!text.contains("argon2") && !text.contains("hash") && !text.contains(PASSWORD), "{text}");
}

#[sqlx::test]
async fn emails_are_unique_whatever_their_case(pool: Pool) {
    let app = TestApp::new(pool).await;
    app.register("ann@example.com").await;
    let again = json!({"email": "ANN@example.com", "password": PASSWORD});
    app.post("/api/v1/auth/register", None, &again).await.assert_error(StatusCode::CONFLICT, "CONFLICT");
}

#[sqlx::test]
async fn weak_passwords_are_refused_with_the_rule_they_break(pool: Pool) {
    let app = TestApp::new(pool).await;
    for (password, rule) in [
        ("short pass", "at least 12 characters"),
        ("Qwerty123456", "most common passwords"),
        ("ann@example.com", "email"),
        (&"x".repeat(129), "at most 128"),
    ] {
        let body = json!({"email": "ann@example.com", "password": password});
        let response = app.post("/api/v1/auth/register", None, &body).await;
        let error = response.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
        assert_eq!(error["details"][0]["field"], "password", "{error}");
        let message = error["details"][0]["message"].as_str().expect("message");
        assert!(message.contains(rule), "{password:?}: {message}");
        assert!(!String::from_utf8_lossy(&response.body).contains(password), "the password is not echoed");
    }
}

#[sqlx::test]
async fn clients_cannot_assign_themselves_roles(pool: Pool) {
    let app = TestApp::new(pool).await;
    let body = json!({"email": "mallory@example.com", "password": PASSWORD, "roles": ["admin"]});
    let error = app
        .post("/api/v1/auth/register", None, &body)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(error["details"][0]["field"], "roles");
}

#[sqlx::test]
async fn login_issues_tokens_that_identify_the_caller(pool: Pool) {
    let app = TestApp::new(pool).await;
    let tokens = app.signed_up("ann@example.com").await;
    let me = app.get_as("/api/v1/me", &tokens.access).await;
    assert_eq!(me.status, StatusCode::OK);
    let me = me.json();
    assert_eq!(me["account"]["email"], "ann@example.com");
    assert_eq!(me["subject"], me["account"]["id"]);
    assert_eq!(me["roles"], json!(["user"]));
    assert_eq!(me["auth_method"], "password");
    assert!(me["scopes"].as_array().is_some_and(|scopes| !scopes.is_empty()));
}

#[sqlx::test]
async fn unknown_email_and_wrong_password_answer_alike(pool: Pool) {
    let app = TestApp::new(pool).await;
    app.register("ann@example.com").await;
    let wrong_password = json!({"email": "ann@example.com", "password": "not the password at all"});
    let unknown_email = json!({"email": "nobody@example.com", "password": PASSWORD});
    let a = app.post("/api/v1/auth/login", None, &wrong_password).await;
    let b = app.post("/api/v1/auth/login", None, &unknown_email).await;
    let error_a = a.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let error_b = b.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    assert_eq!(error_a["message"], error_b["message"]);
    assert_eq!(a.header("www-authenticate"), "Bearer");
    assert_eq!(a.header("www-authenticate"), b.header("www-authenticate"));
}

/// Both paths verify one argon2 hash, so their times match within noise:
/// the median of each, alternated to share any drift, within a factor 2.
#[sqlx::test]
async fn login_takes_as_long_for_an_unknown_email_as_for_a_wrong_password(pool: Pool) {
    let app = TestApp::new(pool).await;
    app.register("ann@example.com").await;
    let wrong_password = json!({"email": "ann@example.com", "password": "not the password at all"});
    let unknown_email = json!({"email": "nobody@example.com", "password": "not the password at all"});
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for round in 0..12 {
        for (body, samples) in [(&wrong_password, &mut known), (&unknown_email, &mut unknown)] {
            let started = Instant::now();
            let response = app.post("/api/v1/auth/login", None, body).await;
            assert_eq!(response.status, StatusCode::UNAUTHORIZED);
            // The first round warms caches; the lockout threshold is 5, so
            // keep the wrong-password account below it with a correct login.
            if round > 0 {
                samples.push(started.elapsed());
            }
        }
        if round % 4 == 3 {
            app.login("ann@example.com", PASSWORD).await;
        }
    }
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2].as_secs_f64()
    };
    let ratio = median(&mut known) / median(&mut unknown);
    assert!((0.5..2.0).contains(&ratio), "wrong password / unknown email = {ratio:.2}");
}

#[sqlx::test]
async fn repeated_failures_lock_the_account_until_the_lock_expires(pool: Pool) {
    let config = config_with(|figment| {
        figment.merge(("auth.lockout_threshold", 3)).merge(("auth.lockout_base_secs", 1))
    });
    let app = TestApp::with_config(pool, config).await;
    app.register("ann@example.com").await;
    let wrong = json!({"email": "ann@example.com", "password": "not the password at all"});
    for _ in 0..3 {
        app.post("/api/v1/auth/login", None, &wrong)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let right = json!({"email": "ann@example.com", "password": PASSWORD});
    let locked = app.post("/api/v1/auth/login", None, &right).await;
    locked.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = app.post("/api/v1/auth/login", None, &right).await;
    assert_eq!(response.status, StatusCode::OK, "the owner's password works once the lock expired");
}

#[sqlx::test]
async fn a_hash_with_old_parameters_is_upgraded_at_login(pool: Pool) {
    use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};

    let app = TestApp::new(pool.clone()).await;
    app.register("ann@example.com").await;
    let weak =
        Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8 * 1024, 1, 1, None).expect("params"))
            .hash_password(PASSWORD.as_bytes())
            .expect("hash")
            .to_string();
    sqlx::query("UPDATE users SET password_hash = $1").bind(&weak).execute(&pool).await.expect("update");

    app.login("ann@example.com", PASSWORD).await;
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users").fetch_one(&pool).await.expect("hash");
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
    app.login("ann@example.com", PASSWORD).await;
}

#[sqlx::test]
async fn changing_the_password_ends_every_session(pool: Pool) {
    let app = TestApp::new(pool).await;
    let laptop = app.signed_up("ann@example.com").await;
    let phone = app.login("ann@example.com", PASSWORD).await;
    let new_password = "a brand new passphrase";

    let wrong = json!({"current_password": "not the password at all", "new_password": new_password});
    let error = app
        .post("/api/v1/auth/password", Some(&laptop.access), &wrong)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(error["details"][0]["field"], "current_password");

    let weak = json!({"current_password": PASSWORD, "new_password": "password"});
    let error = app
        .post("/api/v1/auth/password", Some(&laptop.access), &weak)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(error["details"][0]["field"], "new_password");

    let change = json!({"current_password": PASSWORD, "new_password": new_password});
    let response = app.post("/api/v1/auth/password", Some(&laptop.access), &change).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);

    for session in [&laptop, &phone] {
        app.refresh(&session.refresh).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN");
    }
    let old = json!({"email": "ann@example.com", "password": PASSWORD});
    app.post("/api/v1/auth/login", None, &old)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    app.login("ann@example.com", new_password).await;
}

#[sqlx::test]
async fn account_routes_require_a_token(pool: Pool) {
    let app = TestApp::new(pool).await;
    let response = app.get("/api/v1/me").await;
    response.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(response.header("www-authenticate"), "Bearer");
    for path in ["/api/v1/auth/logout-all", "/api/v1/auth/password"] {
        let body = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
        app.post(path, None, &body).await.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
}
