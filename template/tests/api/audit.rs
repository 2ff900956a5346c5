//! The audit trail: each security action leaves its event with the right
//! fields, in the table and on the `audit` log target, and never a secret;
//! the table is append-only and hash-chained, so that `verify-audit` names
//! a row altered behind the database's back; floods stay small; two
//! instances appending at once keep one chain; pruning keeps it verifiable.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use app::{
    audit::{self, Actor, Event, Outcome, chain},
    config::Config,
    db::{Pool, audit::AuditRow},
    telemetry,
};
use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::{ConnectOptions, pool::PoolOptions};

use crate::{
    BIN,
    helpers::{CapturedLogs, PASSWORD, TestApp, TokenPair, app_state, config_with, grant_admin},
    smtp::SmtpServer,
};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

/// Every row of the trail, oldest first.
async fn rows(pool: &Pool) -> Vec<AuditRow> {
    sqlx::query_as("SELECT * FROM audit_events ORDER BY seq").fetch_all(pool).await.expect("audit rows")
}

/// The rows named `name`, once at least `count` of them are written (the
/// queue's writer and the flood window run in the background).
pub async fn events(pool: &Pool, name: &str, count: usize) -> Vec<AuditRow> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<AuditRow> = rows(pool).await.into_iter().filter(|row| row.name == name).collect();
        if found.len() >= count || Instant::now() > deadline {
            assert!(found.len() >= count, "{count} × {name} expected, found {found:?}");
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn event(pool: &Pool, name: &str) -> AuditRow {
    events(pool, name, 1).await.pop().expect("one event")
}

pub fn details(row: &AuditRow) -> Value {
    serde_json::from_str(&row.details).expect("details are JSON")
}

/// A configuration for these tests: mail to `smtp`, JSON logs, floods
/// written every second.
fn config(smtp: &SmtpServer) -> Config {
    config_with(|figment| {
        smtp.configure(figment)
            .merge(("log.format", "json"))
            .merge(("audit.flood_window_secs", 1))
            .merge(("auth.throttle_per_address", 2))
            .merge(("auth.throttle_per_account", 10))
    })
}

/// Registration, proving the address, logins that work and fail (with a
/// reason class that never says which of email and password was wrong),
/// refreshing, reuse of a refresh token, logout and logout-all.
#[sqlx::test]
async fn sign_in_and_session_actions_record_their_events(pool: Pool) {
    let smtp = SmtpServer::start().await;
    let config = config(&smtp);
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(&config, logs.clone()));
    let app = TestApp::with_config(pool.clone(), config).await;
    let client = ip("192.0.2.10");
    let ann = json!({"email": "ann@example.com", "password": PASSWORD});

    app.post_from(client, "/api/v1/auth/register", None, &ann).await;
    app.post_from(client, "/api/v1/auth/register", None, &ann).await;
    let registered = events(&pool, "account.registered", 2).await;
    let ann_id = registered[0].target_id.clone().expect("the new account");
    assert_eq!(
        (registered[0].outcome.as_str(), registered[0].source.as_deref()),
        ("success", Some("192.0.2.10"))
    );
    assert_eq!((registered[1].outcome.as_str(), registered[1].target_id.as_ref()), ("failure", None));
    assert_eq!(details(&registered[1])["reason"], "address_taken");

    let link = smtp.message("ann@example.com", "Confirm your email address").await;
    app.post("/api/v1/auth/verify-email", None, &json!({"token": link.token()})).await;
    let verified = event(&pool, "account.email_verified").await;
    assert_eq!(
        (verified.actor_id.as_deref(), verified.actor_method.as_deref()),
        (Some(&*ann_id), Some("email_link"))
    );

    let wrong = json!({"email": "ann@example.com", "password": "not the password at all"});
    let unknown = json!({"email": "nobody@example.com", "password": "not the password at all"});
    app.post_from(client, "/api/v1/auth/login", None, &unknown).await;
    for _ in 0..3 {
        app.post_from(client, "/api/v1/auth/login", None, &wrong).await;
    }
    let failed = events(&pool, "auth.login.failed", 4).await;
    let reasons: Vec<Value> = failed.iter().map(|row| details(row)["reason"].clone()).collect();
    assert_eq!(
        reasons,
        ["credentials", "credentials", "credentials", "throttled"],
        "unknown and wrong alike"
    );
    assert!(failed.iter().all(|row| row.actor_kind == "anonymous" && row.outcome == "failure"));

    let session = app.login("ann@example.com", PASSWORD).await;
    let login = event(&pool, "auth.login.succeeded").await;
    assert_eq!(
        (login.actor_id.as_deref(), login.actor_method.as_deref()),
        (Some(&*ann_id), Some("password"))
    );
    assert_eq!(login.source.as_deref(), Some("127.0.0.1"));

    let rotated = app.refresh(&session.refresh).await.json();
    let refreshed = event(&pool, "auth.token.refreshed").await;
    assert_eq!(refreshed.actor_id.as_deref(), Some(&*ann_id));
    app.refresh(&session.refresh).await;
    let reuse = event(&pool, "auth.refresh.reuse_detected").await;
    assert_eq!((reuse.outcome.as_str(), reuse.target_id.as_deref()), ("denied", Some(&*ann_id)));

    let second = app.login("ann@example.com", PASSWORD).await;
    app.post("/api/v1/auth/logout", None, &json!({"refresh_token": second.refresh})).await;
    assert_eq!(event(&pool, "auth.logout").await.actor_id.as_deref(), Some(&*ann_id));
    let third = app.login("ann@example.com", PASSWORD).await;
    app.post("/api/v1/auth/logout-all", Some(&third.access), &json!({})).await;
    let all = event(&pool, "auth.logout_all").await;
    assert_eq!((all.actor_id.as_deref(), all.actor_method.as_deref()), (Some(&*ann_id), Some("password")));

    let audit_line = logs
        .text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["target"] == "audit" && line["fields"]["event"] == "auth.token.refreshed");
    assert!(audit_line.is_some(), "no JSON line on the audit target");

    let secrets = [
        PASSWORD.to_owned(),
        "not the password at all".to_owned(),
        link.token(),
        session.access,
        session.refresh,
        rotated["refresh_token"].as_str().expect("refresh token").to_owned(),
        third.access,
        third.refresh,
    ];
    assert_no_secret(&pool, &logs, &secrets).await;
}

/// Nothing the client sent as a credential reaches the table or the logs.
async fn assert_no_secret(pool: &Pool, logs: &CapturedLogs, secrets: &[String]) {
    let table = format!("{:?}", rows(pool).await);
    let text = logs.text();
    for secret in secrets {
        assert!(!table.contains(secret.as_str()), "a secret reached the audit table");
        assert!(!text.contains(secret.as_str()), "a secret reached the logs");
    }
}

/// Changes that matter (password, reset, email, roles, disabling) are
/// recorded with who did them, in the same transaction as the change.
#[sqlx::test]
async fn changes_record_their_events_with_the_actor(pool: Pool) {
    let smtp = SmtpServer::start().await;
    let config = config(&smtp);
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(&config, logs.clone()));
    let app = TestApp::with_config(pool.clone(), config).await;
    let ann_id = app.register("ann@example.com").await["id"].as_str().expect("id").to_owned();
    let root_id = app.register("root@example.com").await["id"].as_str().expect("id").to_owned();
    let carl_id = app.register("carl@example.com").await["id"].as_str().expect("id").to_owned();
    grant_admin(&pool, &root_id).await;

    let ann = app.login("ann@example.com", PASSWORD).await;
    let change = json!({"current_password": PASSWORD, "new_password": "another long passphrase"});
    app.post("/api/v1/auth/password", Some(&ann.access), &change).await;
    let changed = event(&pool, "account.password_changed").await;
    assert_eq!((changed.actor_id.as_deref(), changed.target_id.as_deref()), (Some(&*ann_id), Some(&*ann_id)));

    let ann = app.login("ann@example.com", "another long passphrase").await;
    let move_to = json!({"current_password": "another long passphrase", "new_email": "ann@new.example"});
    app.post("/api/v1/me/email", Some(&ann.access), &move_to).await;
    event(&pool, "account.email_change.requested").await;
    let link = smtp.message("ann@new.example", "Confirm your email address").await;
    app.post("/api/v1/auth/verify-email", None, &json!({"token": link.token()})).await;
    assert_eq!(event(&pool, "account.email_changed").await.target_id.as_deref(), Some(&*ann_id));

    app.post("/api/v1/auth/password-reset", None, &json!({"email": "ann@new.example"})).await;
    let reset = smtp.message("ann@new.example", "Reset your password").await;
    let confirm = json!({"token": reset.token(), "new_password": "a third long passphrase"});
    app.post("/api/v1/auth/password-reset/confirm", None, &confirm).await;
    assert_eq!(event(&pool, "account.password_reset").await.actor_method.as_deref(), Some("email_link"));

    let root = app.login("root@example.com", PASSWORD).await;
    let roles = json!({"roles": ["admin"]});
    app.call("PUT", &format!("/api/v1/admin/users/{ann_id}/roles"), Some(&root.access), Some(&roles)).await;
    let granted = event(&pool, "admin.roles_changed").await;
    assert_eq!(
        (granted.actor_id.as_deref(), granted.target_id.as_deref()),
        (Some(&*root_id), Some(&*ann_id))
    );
    assert_eq!(details(&granted), json!({"from": ["user"], "to": ["user", "admin"]}));
    app.call("POST", &format!("/api/v1/admin/users/{carl_id}/disable"), Some(&root.access), None).await;
    let disabled = event(&pool, "admin.account_disabled").await;
    assert_eq!(
        (disabled.actor_id.as_deref(), disabled.target_id.as_deref()),
        (Some(&*root_id), Some(&*carl_id))
    );
    app.call("POST", &format!("/api/v1/admin/users/{carl_id}/unlock"), Some(&root.access), None).await;
    assert_eq!(event(&pool, "admin.account_unlocked").await.actor_id.as_deref(), Some(&*root_id));

    let secrets = [PASSWORD.to_owned(), "another long passphrase".to_owned(), link.token(), reset.token()];
    assert_no_secret(&pool, &logs, &secrets).await;
}

/// Denials and rate-limit refusals: one row per source, actor and window,
/// with a count, however many requests; past `audit.max_flood_sources`
/// sources, the rest share one row.
#[sqlx::test]
async fn a_flood_of_refused_requests_leaves_a_bounded_number_of_rows(pool: Pool) {
    // A window longer than the test, flushed by hand below.
    let config = config_with(|figment| {
        figment
            .merge(("audit.flood_window_secs", 3600))
            .merge(("audit.max_flood_sources", 5))
            .merge(("rate_limit.anonymous", json!({"requests": 1, "window_secs": 60})))
    });
    let state = app_state(pool.clone(), config).await;
    let app = TestApp::with_state(state.clone());
    let flooder = ip("192.0.2.66");
    for _ in 0..300 {
        app.send_from(flooder, forged("/api/v1/me")).await;
    }
    for last in 1..=20 {
        app.send_from(ip(&format!("198.51.100.{last}")), forged("/api/v1/me")).await;
    }
    let user = app.signed_up("ann@example.com").await;
    for _ in 0..50 {
        app.get_as("/api/v1/admin/users", &user.access)
            .await
            .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    state.audit.flush_floods();
    events(&pool, "access.denied", 1).await;

    let all = rows(&pool).await;
    let rejected: Vec<&AuditRow> = all.iter().filter(|row| row.name == "auth.token.rejected").collect();
    let limited: Vec<&AuditRow> = all.iter().filter(|row| row.name == "rate_limit.exceeded").collect();
    let denied: Vec<&AuditRow> = all.iter().filter(|row| row.name == "access.denied").collect();
    assert_eq!((rejected.len(), limited.len()), (6, 1), "five sources apart, the rest in one row");
    let flood_total: i64 = rejected.iter().chain(&limited).map(|row| row.count).sum();
    assert_eq!(flood_total, 320, "every refused request is counted");
    let from_flooder = limited.iter().find(|row| row.source.as_deref() == Some("192.0.2.66")).expect("a row");
    assert_eq!((from_flooder.count, details(from_flooder)["class"].as_str()), (299, Some("anonymous")));
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!((denied[0].count, denied[0].actor_kind.as_str()), (50, "account"));
    assert_eq!(denied[0].target_id.as_deref(), Some("GET /api/v1/admin/users"));
}

fn forged(uri: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::get(uri)
        .header("authorization", "Bearer forged")
        .body(axum::body::Body::empty())
        .expect("request")
}

/// The database refuses to change or delete an event; a change made behind
/// its back (triggers dropped) breaks the chain at that row, and
/// `verify-audit` names it and fails.
#[sqlx::test]
async fn the_trail_is_append_only_and_verify_audit_names_a_tampered_row(pool: Pool) {
    for n in 0..5 {
        let event = Event::new("test.event", Outcome::Success).actor(Actor::system()).detail("n", n);
        audit::append_now(&pool, event).await.expect("append");
    }
    let verified = chain::verify(&pool).await.expect("a fresh chain verifies");
    assert_eq!((verified.rows, verified.first_seq), (5, 1));

    for statement in [
        "UPDATE audit_events SET source = '203.0.113.1' WHERE seq = 3",
        "DELETE FROM audit_events WHERE seq = 3",
    ] {
        let refused = sqlx::query(statement).execute(&pool).await;
        assert!(
            refused.is_err_and(|err| err.to_string().contains("append-only")),
            "{statement} went through"
        );
    }

    drop_append_only_triggers(&pool).await;
    sqlx::query("UPDATE audit_events SET source = '203.0.113.1' WHERE seq = 3")
        .execute(&pool)
        .await
        .expect("edit");
    assert_eq!(
        chain::verify(&pool).await.expect_err("tampered").to_string(),
        chain::Broken::Altered { seq: 3 }.to_string()
    );
    let data = tempfile::tempdir().expect("tempdir");
    let output = std::process::Command::new(BIN)
        .arg("verify-audit")
        .env("APP_DATABASE__URL", pool.connect_options().to_url_lossy().to_string())
        .env("APP_TLS__DEV_CERT_DIR", data.path())
        .output()
        .expect("runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success() && printed.contains("row 3 was altered"), "{printed}");

    sqlx::query("DELETE FROM audit_events WHERE seq = 4").execute(&pool).await.expect("delete");
    sqlx::query("UPDATE audit_events SET source = NULL WHERE seq = 3").execute(&pool).await.expect("restore");
    let missing = chain::verify(&pool).await.expect_err("a row is missing");
    assert_eq!(missing.to_string(), chain::Broken::Missing { seq: 4, found: 5 }.to_string());
}

async fn drop_append_only_triggers(pool: &Pool) {
    let statements: &[&'static str] = if pool.connect_options().to_url_lossy().scheme() == "sqlite" {
        &[
            "DROP TRIGGER audit_events_are_never_updated",
            "DROP TRIGGER audit_events_are_deleted_only_by_pruning",
        ]
    } else {
        &["DROP TRIGGER audit_events_append_only ON audit_events"]
    };
    for &statement in statements {
        sqlx::raw_sql(statement).execute(pool).await.expect("drop trigger");
    }
}

/// Pruning removes old events and leaves a chain that still verifies, with
/// an `audit.pruned` event telling what was removed; later rows stay
/// undeletable.
#[sqlx::test]
async fn pruning_keeps_the_chain_verifiable(pool: Pool) {
    for n in 0..4 {
        audit::append_now(&pool, Event::new("test.event", Outcome::Success).detail("n", n))
            .await
            .expect("append");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let pruned = audit::prune(&pool, Duration::ZERO).await.expect("prune");
    assert_eq!(pruned, audit::Pruned { removed: 4, upto_seq: Some(4) });
    let left = rows(&pool).await;
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].name.as_str(), details(&left[0])["upto_seq"].as_i64()), ("audit.pruned", Some(4)));
    audit::append_now(&pool, Event::new("test.event", Outcome::Success)).await.expect("append");
    let verified = chain::verify(&pool).await.expect("verifies after pruning");
    assert_eq!((verified.rows, verified.first_seq), (2, 5));
    let refused = sqlx::query("DELETE FROM audit_events WHERE seq = 5").execute(&pool).await;
    assert!(refused.is_err(), "rows after the pruning point stay undeletable");
}

/// Two instances (two pools on one database) appending at once leave one
/// chain: appends serialize on the chain's head in the database.
#[sqlx::test]
async fn two_instances_appending_at_once_keep_one_valid_chain(pool: Pool) {
    let other: Pool = PoolOptions::new()
        .max_connections(4)
        .connect_with((*pool.connect_options()).clone())
        .await
        .expect("a second pool");
    let append = |pool: Pool, instance: &'static str| async move {
        for n in 0..50 {
            let event =
                Event::new("test.event", Outcome::Success).detail("instance", instance).detail("n", n);
            audit::append_now(&pool, event).await.expect("append");
        }
    };
    tokio::join!(append(pool.clone(), "a"), append(other, "b"), append(pool.clone(), "c"));
    let verified = chain::verify(&pool).await.expect("one valid chain");
    assert_eq!(verified.rows, 150);
}

/// An administrator, root@example.com, signed in: its id and tokens.
async fn signed_in_admin(app: &TestApp, pool: &Pool) -> (String, TokenPair) {
    let id = app.register("root@example.com").await["id"].as_str().expect("id").to_owned();
    grant_admin(pool, &id).await;
    (id, app.login("root@example.com", PASSWORD).await)
}

/// Admins query the trail: by actor, event, outcome, target and time,
/// newest first, a bounded page at a time with a cursor.
#[sqlx::test]
async fn admins_query_the_trail_with_filters_and_a_cursor(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let (root_id, root) = signed_in_admin(&app, &pool).await;
    let wrong = json!({"email": "root@example.com", "password": "not the password at all"});
    for _ in 0..3 {
        app.post("/api/v1/auth/login", None, &wrong).await;
    }
    events(&pool, "auth.login.failed", 3).await;

    let page = app.get_as("/api/v1/admin/audit?event=auth.login.failed&limit=2", &root.access).await.json();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["items"][0]["outcome"], "failure");
    assert_eq!(page["items"][0]["details"]["reason"], "credentials");
    let first_seq = page["items"][0]["seq"].as_i64().expect("seq");
    assert!(first_seq > page["items"][1]["seq"].as_i64().expect("seq"), "newest first");
    let before = page["next_before"].as_i64().expect("a cursor");
    let rest = app
        .get_as(&format!("/api/v1/admin/audit?event=auth.login.failed&limit=2&before={before}"), &root.access)
        .await
        .json();
    assert_eq!((rest["items"].as_array().map(Vec::len), &rest["next_before"]), (Some(1), &Value::Null));

    let by_actor =
        app.get_as(&format!("/api/v1/admin/audit?actor={root_id}&outcome=success"), &root.access).await;
    let items = by_actor.json()["items"].as_array().expect("items").clone();
    assert!(items.iter().any(|item| item["event"] == "auth.login.succeeded"), "{items:?}");
    assert!(items.iter().all(|item| item["actor"]["id"] == root_id.as_str() && item["outcome"] == "success"));
    let future = app.get_as("/api/v1/admin/audit?since=2999-01-01T00:00:00Z", &root.access).await.json();
    assert_eq!(future["items"], json!([]));
    let too_long = format!("/api/v1/admin/audit?actor={}", "x".repeat(201));
    app.get_as(&too_long, &root.access)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    app.get_as("/api/v1/admin/audit?limit=101", &root.access)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
}

/// A filter is one line of text: control characters are refused with 422,
/// never passed to the database (PostgreSQL cannot compare text holding a
/// NUL: `scripts/security-scan` found that as a 500).
#[sqlx::test]
async fn audit_filters_with_control_characters_are_refused(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let (_, root) = signed_in_admin(&app, &pool).await;
    for query in ["actor=%00%C2%92y", "event=auth.login%0Afailed", "target=%1B%5B2J"] {
        let refused = app.get_as(&format!("/api/v1/admin/audit?{query}"), &root.access).await;
        refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    }
}

/// A full queue drops events rather than make a request wait: the drops
/// are counted and logged once, and the log line on the `audit` target of
/// each event stays.
#[sqlx::test]
async fn an_overflowing_queue_drops_counts_and_says_so_but_never_waits(pool: Pool) {
    let config =
        config_with(|figment| figment.merge(("audit.queue_capacity", 1)).merge(("log.format", "json")));
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(&config, logs.clone()));
    let auditor = audit::Auditor::start(&config.audit, pool.clone());
    let started = Instant::now();
    // Without an await in between, the writer cannot drain meanwhile.
    for n in 0..100 {
        auditor.record(Event::new("test.event", Outcome::Success).detail("n", n));
    }
    assert!(started.elapsed() < Duration::from_millis(500), "recording waited: {:?}", started.elapsed());
    assert_eq!(auditor.dropped(), 99);
    let text = logs.text();
    assert_eq!(text.matches("audit queue full").count(), 1, "{text}");
    assert_eq!(text.matches("\"target\":\"audit\"").count(), 100, "every event is still logged");
    assert_eq!(events(&pool, "test.event", 1).await.len(), 1);
}
