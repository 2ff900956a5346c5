//! Encryption at rest: confidential note bodies are sealed in the database,
//! bound to their row, and survive a key rotation under load.

use app::{
    db::Pool,
    encryption::DataKeys,
    notes::{self, NotesError},
};
use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::ConnectOptions;
use uuid::Uuid;

use crate::helpers::{TestApp, app_state, config_with};

const KEY_A: &str = "a:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const KEY_B: &str = "b:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const KEY_X: &str = "x:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

/// The application with these data keys (the first seals).
async fn app_with_keys(pool: &Pool, keys: &str) -> TestApp {
    let config = config_with(|figment| figment.merge(("encryption.keys", keys)));
    TestApp::with_state(app_state(pool.clone(), config).await)
}

async fn create(app: &TestApp, token: &str, body: &str, confidential: bool) -> Uuid {
    let note = json!({"title": "t", "body": body, "confidential": confidential});
    let response = app.post("/api/v1/notes", Some(token), &note).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&response.body));
    response.json()["id"].as_str().expect("id").parse().expect("uuid")
}

async fn stored_body(pool: &Pool, id: Uuid) -> String {
    sqlx::query_scalar("SELECT body FROM notes WHERE id = $1").bind(id).fetch_one(pool).await.expect("row")
}

/// Every byte the database keeps for the notes table: the SQLite file and
/// its write-ahead log, or PostgreSQL's heap file of the table after a
/// checkpoint (the tests connect as a superuser).
async fn raw_database_bytes(pool: &Pool) -> Vec<u8> {
    if pool.connect_options().to_url_lossy().scheme() == "sqlite" {
        let path: String = sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(pool)
            .await
            .expect("the database file");
        let mut bytes = std::fs::read(&path).expect("database file");
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        bytes
    } else {
        sqlx::query("CHECKPOINT").execute(pool).await.expect("checkpoint");
        sqlx::query_scalar("SELECT pg_read_binary_file(pg_relation_filepath('notes'))")
            .fetch_one(pool)
            .await
            .expect("the table's file")
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[sqlx::test]
async fn a_confidential_body_is_sealed_at_rest_and_read_in_the_clear(pool: Pool) {
    let app = app_with_keys(&pool, KEY_A).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let secret = "the-vault-code-is-8142-9977";
    let open = "an-ordinary-shopping-list-of-eggs";
    let sealed = create(&app, &ann, secret, true).await;
    create(&app, &ann, open, false).await;

    let read = app.get_as(&format!("/api/v1/notes/{sealed}"), &ann).await.json();
    assert_eq!((read["body"].as_str(), read["confidential"].as_bool()), (Some(secret), Some(true)));
    let listed = app.get_as("/api/v1/notes", &ann).await.json().to_string();
    assert!(listed.contains(secret) && listed.contains(open), "{listed}");

    let stored = stored_body(&pool, sealed).await;
    assert!(stored.starts_with("enc1:a:") && !stored.contains("8142"), "{stored}");
    let raw = raw_database_bytes(&pool).await;
    assert!(contains(&raw, open), "the check must see plaintext where there is some");
    assert!(
        !contains(&raw, secret) && !contains(&raw, "vault-code"),
        "a confidential body is on disk in clear"
    );
}

/// Marking a note confidential seals the body it has; unmarking opens it.
#[sqlx::test]
async fn confidentiality_can_be_changed_later(pool: Pool) {
    let app = app_with_keys(&pool, KEY_A).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let id = create(&app, &ann, "first draft", false).await;
    let uri = format!("/api/v1/notes/{id}");
    let patch = async |body: Value| app.call("PATCH", &uri, Some(&ann), Some(&body)).await;
    let sealed = patch(json!({"confidential": true})).await.json();
    assert_eq!(
        (sealed["body"].as_str(), sealed["confidential"].as_bool()),
        (Some("first draft"), Some(true))
    );
    assert!(stored_body(&pool, id).await.starts_with("enc1:a:"));
    patch(json!({"title": "renamed"})).await;
    assert!(stored_body(&pool, id).await.starts_with("enc1:a:"), "other changes keep it sealed");
    let opened = patch(json!({"confidential": false, "body": "final"})).await.json();
    assert_eq!(opened["body"], "final");
    assert_eq!(stored_body(&pool, id).await, "final");
}

/// A sealed body copied into another row (by someone with write access to
/// the database, say) does not open there: the row id is bound into it.
#[sqlx::test]
async fn a_sealed_body_moved_to_another_row_does_not_open(pool: Pool) {
    let app = app_with_keys(&pool, KEY_A).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let source = create(&app, &ann, "ann's secret", true).await;
    let target = create(&app, &ann, "something else", true).await;
    sqlx::query("UPDATE notes SET body = (SELECT body FROM notes WHERE id = $1) WHERE id = $2")
        .bind(source)
        .bind(target)
        .execute(&pool)
        .await
        .expect("copy");
    let moved = app.get_as(&format!("/api/v1/notes/{target}"), &ann).await;
    let error = moved.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    assert!(!error.to_string().contains("secret"), "{error}");
    assert_eq!(app.get_as(&format!("/api/v1/notes/{source}"), &ann).await.status, StatusCode::OK);
}

/// Rotation under load: while every note is re-encrypted under a new key,
/// the owner keeps reading and changing notes. Nothing is lost, every read
/// in between answers, and afterwards the new key alone opens everything.
/// A rotation stopped halfway (here by a value under a key it lacks) leaves
/// everything readable and finishes when run again.
#[sqlx::test]
async fn rotation_under_concurrent_reads_and_writes_loses_nothing(pool: Pool) {
    let before = app_with_keys(&pool, KEY_A).await;
    let ann = before.signed_up("ann@example.com").await.access;
    let mut expected = Vec::new();
    for n in 0..40 {
        let body = format!("secret number {n}");
        expected.push((create(&before, &ann, &body, true).await, body));
    }
    let plain = create(&before, &ann, "not confidential", false).await;

    let rolled_out = format!("{KEY_B} {KEY_A}");
    let during = app_with_keys(&pool, &rolled_out).await;
    let keys = DataKeys::parse(&rolled_out).expect("keys");
    let rotation = notes::reseal_all(&pool, &keys, 3);
    let writes = async {
        for (id, body) in expected.iter_mut().step_by(4) {
            let changed = format!("{body}, changed during the rotation");
            let response = during
                .call("PATCH", &format!("/api/v1/notes/{id}"), Some(&ann), Some(&json!({"body": changed})))
                .await;
            assert_eq!(response.status, StatusCode::OK, "{}", String::from_utf8_lossy(&response.body));
            *body = changed;
        }
    };
    let reads = async {
        for _ in 0..5 {
            let page = during.get_as("/api/v1/notes?limit=100", &ann).await;
            assert_eq!(page.status, StatusCode::OK, "{}", String::from_utf8_lossy(&page.body));
            assert_eq!(page.json()["items"].as_array().expect("items").len(), 41);
        }
    };
    let (resealed, (), ()) = tokio::join!(rotation, writes, reads);
    let resealed = resealed.expect("rotation completes");
    assert!((30..=40).contains(&resealed), "{resealed} re-encrypted; the rest were rewritten meanwhile");

    let after = app_with_keys(&pool, KEY_B).await;
    for (id, body) in &expected {
        assert!(stored_body(&pool, *id).await.starts_with("enc1:b:"));
        let note = after.get_as(&format!("/api/v1/notes/{id}"), &ann).await.json();
        assert_eq!(note["body"].as_str(), Some(body.as_str()), "{note}");
    }
    assert_eq!(stored_body(&pool, plain).await, "not confidential");
    assert_eq!(notes::reseal_all(&pool, &DataKeys::parse(KEY_B).expect("keys"), 3).await.expect("runs"), 0);

    // A rotation to key A that meets a value under a key it lacks stops
    // there, having rotated the notes before it; with the key it resumes.
    let stray = create(&app_with_keys(&pool, KEY_X).await, &ann, "under x", true).await;
    let back = DataKeys::parse(&format!("{KEY_A} {KEY_B}")).expect("keys");
    assert!(matches!(notes::reseal_all(&pool, &back, 3).await, Err(NotesError::Encryption(_))));
    for (id, _) in &expected {
        assert!(
            stored_body(&pool, *id).await.starts_with("enc1:a:"),
            "the notes before the stray one rotated"
        );
    }
    assert!(expected.iter().all(|(id, _)| *id < stray), "the stray note comes last");
    let with_x = DataKeys::parse(&format!("{KEY_A} {KEY_B} {KEY_X}")).expect("keys");
    assert_eq!(notes::reseal_all(&pool, &with_x, 3).await.expect("resumes"), 1);
    let everything = app_with_keys(&pool, KEY_A).await;
    let page = everything.get_as("/api/v1/notes?limit=100", &ann).await;
    assert_eq!(page.json()["items"].as_array().expect("items").len(), 42);
}

/// `rotate-data-key` as an operator runs it, the keys read from a file:
/// note bodies and the mail waiting in the outbox.
#[sqlx::test]
async fn rotate_data_key_reencrypts_and_reports(pool: Pool) {
    let app = app_with_keys(&pool, KEY_A).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let mut ids = Vec::new();
    for body in ["one", "two", "three"] {
        ids.push(create(&app, &ann, body, true).await);
    }
    // And a message waiting in the outbox for a mail server that is down.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let mail_down = config_with(|figment| {
        figment
            .merge(("encryption.keys", KEY_A))
            .merge(("mail.transport", "smtp"))
            .merge(("mail.smtp.host", "127.0.0.1"))
            .merge(("mail.smtp.port", nobody.port()))
            .merge(("mail.smtp.tls", "none"))
    });
    let waiting = app_state(pool.clone(), mail_down).await;
    let bob = app::domain::Email::try_from("bob@example.com".to_owned()).expect("address");
    waiting.mail.send(&bob, app::mail::Message::PasswordChanged).await.expect("queued");
    let secrets = tempfile::tempdir().expect("tempdir");
    let keys_file = secrets.path().join("data-keys");
    std::fs::write(&keys_file, format!("{KEY_B}\n{KEY_A}\n")).expect("write keys");
    // Run off this runtime, which keeps driving the outbox's worker: frozen
    // mid-transaction, it would hold the database from the command.
    let rotate = || {
        let mut command = std::process::Command::new(crate::BIN);
        command
            .args(["rotate-data-key", "--batch", "2"])
            .env("APP_DATABASE__URL", pool.connect_options().to_url_lossy().to_string())
            .env("APP_ENCRYPTION__KEYS_FILE", &keys_file);
        tokio::task::spawn_blocking(move || command.output().expect("runs"))
    };
    let first = rotate().await.expect("joined");
    let said = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(first.status.success(), "{said}{}", String::from_utf8_lossy(&first.stderr));
    assert!(said.contains("re-encrypted 4 values") && said.contains("under the key b"), "{said}");
    for id in ids {
        assert!(stored_body(&pool, id).await.starts_with("enc1:b:"));
    }
    let queued: String =
        sqlx::query_scalar("SELECT message FROM mail_outbox").fetch_one(&pool).await.expect("still waiting");
    assert!(queued.starts_with("enc1:b:"), "{queued}");
    let again = rotate().await.expect("joined");
    assert!(String::from_utf8_lossy(&again.stdout).contains("re-encrypted 0 values"));
}
