//! The flows that go through a mailbox, against a real SMTP server
//! (`smtp.rs`) and completed from the captured message's link: proving an
//! address, an enumeration-proof registration, "forgot password", moving an
//! account to another address, and the per-address share of mail.

use std::time::{Duration, Instant};

use app::{db::Pool, telemetry};
use axum::http::StatusCode;
use serde_json::json;

use crate::{
    helpers::{CapturedLogs, PASSWORD, TestApp, config_with},
    smtp::SmtpServer,
};

/// The app, sending its mail to a fresh SMTP server, with links to a front
/// end at `https://app.test`.
async fn app_with_mail(
    pool: Pool,
    overrides: impl FnOnce(figment::Figment) -> figment::Figment,
) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let config = config_with(|figment| {
        overrides(smtp.configure(figment).merge(("mail.link_base_url", "https://app.test")))
    });
    (TestApp::with_config(pool, config).await, smtp)
}

fn registration(email: &str, password: &str) -> serde_json::Value {
    json!({"email": email, "password": password})
}

/// Registration answers alike for a new and a taken address: a new one
/// gets a link, a taken one a notice, and the existing account is left as
/// it was (its password still works, the newcomer's does not).
#[sqlx::test]
async fn registration_answers_alike_and_mails_a_link_or_a_notice(pool: Pool) {
    let (app, smtp) = app_with_mail(pool, |figment| figment).await;
    let first = app.post("/api/v1/auth/register", None, &registration("ann@example.com", PASSWORD)).await;
    let again = app
        .post("/api/v1/auth/register", None, &registration("ann@example.com", "a squatter's passphrase"))
        .await;
    assert_eq!((first.status, again.status), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(first.body, again.body, "one body for both");

    let mail = smtp.wait_for("ann@example.com", 2).await;
    assert_eq!(mail.len(), 2, "{mail:?}");
    assert_eq!(mail[0].subject(), "Confirm your email address");
    assert!(mail[0].link().starts_with("https://app.test/verify-email#token="), "{}", mail[0].link());
    assert_eq!(mail[1].subject(), "Someone tried to register with your address");
    assert!(!mail[1].body().contains("https://"), "a notice carries no link");

    app.login("ann@example.com", PASSWORD).await;
    let squatter = json!({"email": "ann@example.com", "password": "a squatter's passphrase"});
    app.post("/api/v1/auth/login", None, &squatter)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
}

/// Both cost one password hash, so their times match within noise (the
/// median of each, alternated), as for logins.
#[sqlx::test]
async fn registration_takes_as_long_for_a_taken_address_as_for_a_new_one(pool: Pool) {
    let (app, _smtp) =
        app_with_mail(pool, |figment| figment.merge(("mail.max_per_address_per_hour", 100))).await;
    app.register("taken@example.com").await;
    let (mut new, mut taken) = (Vec::new(), Vec::new());
    for round in 0..13 {
        let fresh = registration(&format!("new{round}@example.com"), PASSWORD);
        let existing = registration("taken@example.com", PASSWORD);
        for (body, samples) in [(&fresh, &mut new), (&existing, &mut taken)] {
            let started = Instant::now();
            assert_eq!(app.post("/api/v1/auth/register", None, body).await.status, StatusCode::ACCEPTED);
            if round > 0 {
                samples.push(started.elapsed());
            }
        }
    }
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2].as_secs_f64()
    };
    let ratio = median(&mut taken) / median(&mut new);
    assert!((0.5..2.0).contains(&ratio), "taken / new address = {ratio:.2}");
}

/// Register, log in (allowed), find the API closed until the address is
/// proven, follow the link, and use it.
#[sqlx::test]
async fn an_account_proves_its_address_from_the_link_before_using_the_api(pool: Pool) {
    let (app, smtp) = app_with_mail(pool, |figment| figment).await;
    app.post("/api/v1/auth/register", None, &registration("ann@example.com", PASSWORD)).await;
    let session = app.login("ann@example.com", PASSWORD).await;
    let me = app.get_as("/api/v1/me", &session.access).await.json();
    assert_eq!(me["account"]["email_verified"], false);
    let closed = app.get_as("/api/v1/notes", &session.access).await;
    closed.assert_error(StatusCode::FORBIDDEN, "EMAIL_NOT_VERIFIED");

    let resent = app.post("/api/v1/auth/verify-email/resend", Some(&session.access), &json!({})).await;
    assert_eq!(resent.status, StatusCode::ACCEPTED);
    let mail = smtp.wait_for("ann@example.com", 2).await;
    assert_eq!(mail.len(), 2);
    let (older, newer) = (mail[0].token(), mail[1].token());
    let stale = app.post("/api/v1/auth/verify-email", None, &json!({"token": older})).await;
    let error = stale.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(error["details"][0]["field"], "token", "a newer link replaced it");

    let confirmed = app.post("/api/v1/auth/verify-email", None, &json!({"token": newer})).await;
    assert_eq!(confirmed.status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&confirmed.body));
    assert_eq!(app.get_as("/api/v1/notes", &session.access).await.status, StatusCode::OK, "open at once");
    assert_eq!(app.get_as("/api/v1/me", &session.access).await.json()["account"]["email_verified"], true);
    let twice = app.post("/api/v1/auth/verify-email", None, &json!({"token": newer})).await;
    twice.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
}

/// Forgot password: the same answer for known and unknown addresses; the
/// link sets a new password, ends every session, lifts the login throttle
/// and tells the owner.
#[sqlx::test]
async fn a_forgotten_password_is_reset_from_the_link_and_every_session_ends(pool: Pool) {
    let (app, smtp) = app_with_mail(pool, |figment| figment).await;
    app.register("ann@example.com").await;
    let session = app.login("ann@example.com", PASSWORD).await;
    let attacker = std::net::IpAddr::from([127, 0, 0, 66]);
    let wrong = json!({"email": "ann@example.com", "password": "not the password at all"});
    for _ in 0..6 {
        app.post_from(attacker, "/api/v1/auth/login", None, &wrong).await;
    }

    let known = app.post("/api/v1/auth/password-reset", None, &json!({"email": "ann@example.com"})).await;
    let unknown =
        app.post("/api/v1/auth/password-reset", None, &json!({"email": "nobody@example.com"})).await;
    assert_eq!((known.status, unknown.status), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(known.body, unknown.body);
    let reset_mail = smtp.message("ann@example.com", "Reset your password").await;
    assert!(reset_mail.link().starts_with("https://app.test/reset-password#token="));
    assert!(
        smtp.messages().iter().all(|message| message.to != ["nobody@example.com"]),
        "nothing to unknown addresses"
    );

    let new_password = "a brand new passphrase";
    let weak = json!({"token": reset_mail.token(), "new_password": "password"});
    let error = app
        .post("/api/v1/auth/password-reset/confirm", None, &weak)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(error["details"][0]["field"], "new_password", "the policy holds, and the link still works");
    let reset = json!({"token": reset_mail.token(), "new_password": new_password});
    let response = app.post("/api/v1/auth/password-reset/confirm", None, &reset).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&response.body));
    app.post("/api/v1/auth/password-reset/confirm", None, &reset)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");

    app.refresh(&session.refresh).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN");
    app.get_as("/api/v1/me", &session.access).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    let old = json!({"email": "ann@example.com", "password": PASSWORD});
    app.post("/api/v1/auth/login", None, &old)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let new = json!({"email": "ann@example.com", "password": new_password});
    assert_eq!(
        app.post_from(attacker, "/api/v1/auth/login", None, &new).await.status,
        StatusCode::OK,
        "throttle lifted"
    );
    smtp.message("ann@example.com", "Your password was changed").await;
}

/// Moving to another address: the new one must be proven before it
/// replaces the old one, which is told; a taken address gets a notice and
/// the caller the same answer.
#[sqlx::test]
async fn an_email_change_proves_the_new_address_first_and_tells_the_old_one(pool: Pool) {
    let (app, smtp) = app_with_mail(pool, |figment| figment).await;
    app.register("ann@example.com").await;
    app.register("bob@example.com").await;
    let ann = app.login("ann@example.com", PASSWORD).await;

    let wrong = json!({"current_password": "not the password at all", "new_email": "ann@new.example"});
    app.post("/api/v1/me/email", Some(&ann.access), &wrong)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    let change = json!({"current_password": PASSWORD, "new_email": "ann@new.example"});
    let taken = json!({"current_password": PASSWORD, "new_email": "bob@example.com"});
    let asked = app.post("/api/v1/me/email", Some(&ann.access), &change).await;
    let refused_quietly = app.post("/api/v1/me/email", Some(&ann.access), &taken).await;
    assert_eq!((asked.status, refused_quietly.status), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(asked.body, refused_quietly.body);

    smtp.message("ann@example.com", "Your account's email address may change").await;
    smtp.message("bob@example.com", "Someone tried to move an account to your address").await;
    let link = smtp.message("ann@new.example", "Confirm your email address").await;
    assert_eq!(
        app.get_as("/api/v1/me", &ann.access).await.json()["account"]["email"],
        "ann@example.com",
        "not yet"
    );

    let confirmed = app.post("/api/v1/auth/verify-email", None, &json!({"token": link.token()})).await;
    assert_eq!(confirmed.status, StatusCode::NO_CONTENT);
    let me = app.get_as("/api/v1/me", &ann.access).await.json();
    assert_eq!(
        (me["account"]["email"].as_str(), me["account"]["email_verified"].as_bool()),
        (Some("ann@new.example"), Some(true))
    );
    app.login("ann@new.example", PASSWORD).await;
    let gone = json!({"email": "ann@example.com", "password": PASSWORD});
    app.post("/api/v1/auth/login", None, &gone)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
}

/// Mail bombing: whatever the requests, an address gets at most its hourly
/// share; the answers do not change.
#[sqlx::test]
async fn an_address_gets_at_most_its_hourly_share_of_mail(pool: Pool) {
    let (app, smtp) =
        app_with_mail(pool, |figment| figment.merge(("mail.max_per_address_per_hour", 2))).await;
    app.register("ann@example.com").await;
    for _ in 0..5 {
        let response =
            app.post("/api/v1/auth/password-reset", None, &json!({"email": "ann@example.com"})).await;
        assert_eq!(response.status, StatusCode::ACCEPTED);
    }
    // The register helper's link counted too: it and one reset link went.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.wait_for("ann@example.com", 2).await.len(), 2, "two per hour, whatever the requests");
}

/// Links point at the configured front end, never at whatever `Host` a
/// request named (reset-link poisoning); tokens never reach the logs.
#[sqlx::test]
async fn links_come_from_configuration_and_tokens_never_reach_the_logs(pool: Pool) {
    let logs = CapturedLogs::default();
    let trace = config_with(|figment| figment.merge(("log.format", "json")).merge(("log.filter", "trace")));
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(&trace, logs.clone()));
    let (app, smtp) = app_with_mail(pool, |figment| figment).await;
    app.register("ann@example.com").await;
    let request = axum::http::Request::post("/api/v1/auth/password-reset")
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(json!({"email": "ann@example.com"}).to_string()))
        .expect("request");
    assert_eq!(app.send(request).await.status, StatusCode::ACCEPTED);
    let mail = smtp.message("ann@example.com", "Reset your password").await;
    assert!(mail.link().starts_with("https://app.test/"), "{}", mail.link());
    let token = mail.token();
    app.post(
        "/api/v1/auth/password-reset/confirm",
        None,
        &json!({"token": token, "new_password": "a brand new passphrase"}),
    )
    .await;
    assert!(!logs.text().contains(&token), "a mailed token reached the logs");
}

/// The development transport: one `.eml` file per message in the outbox,
/// so the quickstart needs no mail server.
#[sqlx::test]
async fn the_outbox_keeps_one_file_per_message(pool: Pool) {
    let outbox = tempfile::tempdir().expect("tempdir");
    let config = config_with(|figment| {
        figment.merge(("mail.transport", "outbox")).merge(("mail.outbox_dir", outbox.path()))
    });
    let app = TestApp::with_config(pool, config).await;
    app.post("/api/v1/auth/register", None, &registration("ann@example.com", PASSWORD)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let file = loop {
        let files: Vec<_> =
            std::fs::read_dir(outbox.path()).expect("outbox").filter_map(Result::ok).collect();
        if let Some(file) = files.first() {
            break file.path();
        }
        assert!(Instant::now() < deadline, "nothing written to the outbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(file.extension().and_then(|extension| extension.to_str()), Some("eml"));
    let message = std::fs::read_to_string(&file).expect("message");
    assert!(
        message.contains("To: ann@example.com") && message.contains("Confirm your email address"),
        "{message}"
    );
}

/// While the mail server is down, messages wait in the outbox, sealed (the
/// table shows neither the address nor the link), and the service says it
/// is degraded, not unready. The outbox outlives the process: the next start
/// delivers the message, and its link works.
#[sqlx::test]
async fn mail_waits_sealed_while_the_server_is_down_and_the_next_start_delivers_it(pool: Pool) {
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let down = config_with(|figment| {
        figment
            .merge(("mail.transport", "smtp"))
            .merge(("mail.smtp.host", "127.0.0.1"))
            .merge(("mail.smtp.port", nobody.port()))
            .merge(("mail.smtp.tls", "none"))
    });
    let app = TestApp::with_config(pool.clone(), down).await;
    let accepted = app.post("/api/v1/auth/register", None, &registration("ann@example.com", PASSWORD)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ready = app.get("/readyz").await;
        assert_eq!(ready.status, StatusCode::OK, "mail down never makes the service unready");
        if ready.json() == json!({"status": "degraded", "degraded": ["mail"]}) {
            break;
        }
        assert!(Instant::now() < deadline, "readiness never said mail is degraded: {:?}", ready.json());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waiting: Vec<String> =
        sqlx::query_scalar("SELECT message FROM mail_outbox").fetch_all(&pool).await.expect("outbox");
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(waiting[0].starts_with("enc1:"), "sealed: {}", waiting[0]);
    assert!(!waiting[0].contains("example.com") && !waiting[0].contains("token"), "{}", waiting[0]);
    drop(app);

    let (restarted, smtp) = app_with_mail(pool.clone(), |figment| figment).await;
    let mail = smtp.message("ann@example.com", "Confirm your email address").await;
    let confirmed = restarted.post("/api/v1/auth/verify-email", None, &json!({"token": mail.token()})).await;
    assert_eq!(confirmed.status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&confirmed.body));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox").fetch_one(&pool).await.expect("outbox");
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "a delivered message stayed in the outbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(smtp.messages().len(), 1, "delivered once");
}
