//! Local accounts: registration, login, lockout, password changes.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use app::db::Pool;
use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, config_with};

#[sqlx::test]
async fn accounts_show_their_public_fields_and_never_the_hash(pool: Pool) {
    let app = TestApp::new(pool).await;
    let body = json!({"email": " Ann.Lee@Example.COM ", "password": PASSWORD, "display_name": "Ann"});
    let response = app.post("/api/v1/auth/register", None, &body).await;
    assert_eq!(response.status, StatusCode::ACCEPTED);
    let session = app.login("ann.lee@example.com", PASSWORD).await;
    let me = app.get_as("/api/v1/me", &session.access).await;
    let account = &me.json()["account"];
    assert_eq!(account["email"], "ann.lee@example.com", "normalized");
    assert_eq!(account["roles"], json!(["user"]));
    assert_eq!(account["email_verified"], false);
    for text in [String::from_utf8_lossy(&response.body), String::from_utf8_lossy(&me.body)] {
        assert!(!text.contains("argon2") && !text.contains("hash") && !text.contains(PASSWORD), "{text}");
    }
}

/// One account per address, whatever its case; registering it again
/// changes nothing (see `email.rs` for what the owner is told).
#[sqlx::test]
async fn emails_are_unique_whatever_their_case(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    app.register("ann@example.com").await;
    let again = json!({"email": "ANN@example.com", "password": "another long passphrase"});
    assert_eq!(app.post("/api/v1/auth/register", None, &again).await.status, StatusCode::ACCEPTED);
    let accounts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&pool).await.expect("count");
    assert_eq!(accounts, 1);
    app.login("ann@example.com", PASSWORD).await;
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

/// Unknown fields are refused, and their names, chosen by the client, are
/// never echoed: the answer says where, not what.
#[sqlx::test]
async fn clients_cannot_assign_themselves_roles(pool: Pool) {
    let app = TestApp::new(pool).await;
    let body = json!({"email": "mallory@example.com", "password": PASSWORD, "roles": ["admin"]});
    let error = app
        .post("/api/v1/auth/register", None, &body)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(error["details"], json!([{"field": "body", "message": "has a field that is not accepted"}]));

    let invented = json!({"email": "mallory@example.com", "password": PASSWORD, "<script>x-INVENTED": 1});
    let response = app.post("/api/v1/auth/register", None, &invented).await;
    response.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert!(!String::from_utf8_lossy(&response.body).contains("INVENTED"), "a client-chosen name was echoed");
}

/// Addresses have one canonical form: the local part lower-cased in ASCII
/// only, the domain lower-cased and IDNA-encoded. Addresses that Unicode
/// case folding would turn into another spelling are refused, so that
/// `\u{212A}` (the Kelvin sign) can never register beside `k`.
#[sqlx::test]
async fn emails_have_one_canonical_form_and_no_unicode_twins(pool: Pool) {
    let app = TestApp::new(pool).await;
    let register = |email: &str| {
        let app = &app;
        let body = json!({"email": email, "password": PASSWORD});
        async move { app.post("/api/v1/auth/register", None, &body).await }
    };
    let idn = register("Ann@B\u{fc}cher.Example").await;
    assert_eq!(idn.status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&idn.body));
    app.login("ann@xn--bcher-kva.example", PASSWORD).await;
    for twin in ["\u{212A}elvin@example.com", "\u{c9}lodie@example.com", "\u{ff41}nn@example.com"] {
        let error = register(twin).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
        assert_eq!(error["details"][0]["field"], "email", "{twin}");
    }
    assert_eq!(
        register("\u{e9}lodie@example.com").await.status,
        StatusCode::ACCEPTED,
        "lower-case Unicode is fine"
    );
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

/// An unknown email, a wrong password and a throttled account each verify
/// one argon2 hash, so their times match within noise: the median of each,
/// alternated to share any drift, within a factor 2 of the unknown email's.
/// A shortcut for any of them (an early return for a throttled account,
/// say) would show as a fraction of the others' time.
#[sqlx::test]
async fn login_takes_as_long_for_an_unknown_email_a_wrong_password_and_a_throttled_account(pool: Pool) {
    let app = TestApp::new(pool).await;
    app.register("ann@example.com").await;
    app.register("bob@example.com").await;
    // Ann is throttled for this address before the clock starts.
    let throttled_from = ip(200);
    for _ in 0..6 {
        app.post_from(throttled_from, "/api/v1/auth/login", None, &wrong_login("ann@example.com")).await;
    }
    let (mut unknown, mut wrong, mut throttled) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..13_u8 {
        // Each round's wrong password for Bob comes from a fresh address,
        // so that it never meets the throttle itself.
        let samples: [(IpAddr, serde_json::Value, &mut Vec<Duration>); 3] = [
            (ip(1), wrong_login("nobody@example.com"), &mut unknown),
            (ip(100 + round), wrong_login("bob@example.com"), &mut wrong),
            (throttled_from, right_login("ann@example.com"), &mut throttled),
        ];
        for (from, body, samples) in samples {
            let started = Instant::now();
            let response = app.post_from(from, "/api/v1/auth/login", None, &body).await;
            assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{body}");
            // The first round warms caches.
            if round > 0 {
                samples.push(started.elapsed());
            }
        }
    }
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2].as_secs_f64()
    };
    let baseline = median(&mut unknown);
    for (name, samples) in [("wrong password", &mut wrong), ("throttled account", &mut throttled)] {
        let ratio = median(samples) / baseline;
        assert!((0.5..2.0).contains(&ratio), "{name} / unknown email = {ratio:.2}");
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn wrong_login(email: &str) -> serde_json::Value {
    json!({"email": email, "password": "not the password at all"})
}

fn right_login(email: &str) -> serde_json::Value {
    json!({"email": email, "password": PASSWORD})
}

/// Failures are counted per (account, client address): one address that
/// keeps guessing is throttled, and the owner, elsewhere, is not.
#[sqlx::test]
async fn guesses_from_one_address_never_lock_the_owner_out(pool: Pool) {
    let app = TestApp::new(pool).await;
    app.register("ann@example.com").await;
    let (attacker, owner) = (ip(66), ip(7));
    for _ in 0..12 {
        let response =
            app.post_from(attacker, "/api/v1/auth/login", None, &wrong_login("ann@example.com")).await;
        response.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let throttled =
        app.post_from(attacker, "/api/v1/auth/login", None, &right_login("ann@example.com")).await;
    throttled.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let response = app.post_from(owner, "/api/v1/auth/login", None, &right_login("ann@example.com")).await;
    assert_eq!(response.status, StatusCode::OK, "the owner's address has not been failing");
}

/// However many guesses arrive at once, each is counted before its hash is
/// checked: forty concurrent wrong ones from one address use up its budget
/// as forty sequential ones would, so the right password sent next is
/// refused. (Sent within the burst, it could rightly be among the first
/// five checks and succeed: the order of concurrent requests is not fixed.)
#[sqlx::test]
async fn concurrent_guesses_cannot_slip_past_the_throttle(pool: Pool) {
    // Room in the hashing queue for the whole burst, so that every refusal
    // below is the throttle's, not load shedding.
    let config = config_with(|figment| figment.merge(("auth.max_queued_hashes", 64)));
    let app = TestApp::with_config(pool, config).await;
    app.register("ann@example.com").await;
    let wrong = wrong_login("ann@example.com");
    let right = right_login("ann@example.com");
    let burst: Vec<_> = (0..40).map(|_| app.post("/api/v1/auth/login", None, &wrong)).collect();
    for answer in futures_util::future::join_all(burst).await {
        answer.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let after = app.post("/api/v1/auth/login", None, &right).await;
    after.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
}

/// Every address has its own budget, and the account a ceiling over all of
/// them; a window later, both are fresh.
#[sqlx::test]
async fn many_addresses_meet_the_per_account_ceiling_until_the_window_ends(pool: Pool) {
    let config = config_with(|figment| {
        figment
            .merge(("auth.throttle_per_address", 2))
            .merge(("auth.throttle_per_account", 6))
            .merge(("auth.throttle_window_secs", 1))
    });
    let app = TestApp::with_config(pool, config).await;
    app.register("ann@example.com").await;
    for address in 10..13 {
        for _ in 0..2 {
            app.post_from(ip(address), "/api/v1/auth/login", None, &wrong_login("ann@example.com"))
                .await
                .assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        }
    }
    let ceiling = app.post_from(ip(99), "/api/v1/auth/login", None, &right_login("ann@example.com")).await;
    ceiling.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = app.post_from(ip(10), "/api/v1/auth/login", None, &right_login("ann@example.com")).await;
    assert_eq!(response.status, StatusCode::OK, "a new window, a new budget");
}

/// A stolen access token is not a way to lock its owner out: wrong current
/// passwords count against the thief's address only.
#[sqlx::test]
async fn a_stolen_access_token_cannot_lock_the_owner_out(pool: Pool) {
    let app = TestApp::new(pool).await;
    let stolen = app.signed_up("ann@example.com").await.access;
    let guess =
        json!({"current_password": "not the password at all", "new_password": "a brand new passphrase"});
    for _ in 0..12 {
        app.post_from(ip(66), "/api/v1/auth/password", Some(&stolen), &guess)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    }
    let response = app.post_from(ip(7), "/api/v1/auth/login", None, &right_login("ann@example.com")).await;
    assert_eq!(response.status, StatusCode::OK);
}

/// Password hashing has its own small queue: a flood of logins is shed with
/// 503 and `Retry-After` instead of taking every request slot, so the probes
/// answer at once and other requests are still served.
#[sqlx::test]
async fn a_login_flood_leaves_the_probes_and_other_requests_answering(pool: Pool) {
    let config = config_with(|figment| {
        figment.merge(("server.max_concurrent_requests", 8)).merge(("auth.max_concurrent_hashes", 1))
    });
    let app = TestApp::with_config(pool, config).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let wrong = wrong_login("bob@example.com");
    let flood: Vec<_> = (0..32).map(|_| app.post("/api/v1/auth/login", None, &wrong)).collect();
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        let probe = app.get("/healthz").await;
        let probe_time = started.elapsed();
        let read = app.get_as("/api/v1/notes", &ann).await;
        (probe, probe_time, read)
    };
    let (answers, (probe, probe_time, read)) = tokio::join!(futures_util::future::join_all(flood), meanwhile);
    assert_eq!(probe.status, StatusCode::OK);
    assert!(probe_time < Duration::from_millis(100), "/healthz took {probe_time:?} during the flood");
    assert_eq!(read.status, StatusCode::OK, "{}", String::from_utf8_lossy(&read.body));
    let shed: Vec<_> =
        answers.iter().filter(|answer| answer.status == StatusCode::SERVICE_UNAVAILABLE).collect();
    assert!(!shed.is_empty(), "nothing was shed");
    for answer in shed {
        answer.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
        assert!(answer.header("retry-after").parse::<u32>().is_ok_and(|secs| secs >= 1));
    }
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
