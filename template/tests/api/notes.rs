//! Notes: object-level authorization, pagination and input rules.

use app::db::Pool;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, grant_admin};

async fn create(app: &TestApp, token: &str, title: &str) -> Value {
    let response = app.post("/api/v1/notes", Some(token), &json!({"title": title, "body": "text"})).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&response.body));
    response.json()
}

#[sqlx::test]
async fn a_user_lists_only_their_own_notes_page_by_page(pool: Pool) {
    let app = TestApp::new(pool).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let bob = app.signed_up("bob@example.com").await.access;
    for title in ["one", "two", "three"] {
        create(&app, &ann, title).await;
    }
    create(&app, &bob, "bob's").await;

    let first = app.get_as("/api/v1/notes?limit=2", &ann).await.json();
    let titles = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|n| n["title"].as_str().expect("title").to_owned())
            .collect()
    };
    assert_eq!(titles(&first), ["one", "two"]);
    let after = first["next_after"].as_str().expect("a next page");
    let second = app.get_as(&format!("/api/v1/notes?limit=2&after={after}"), &ann).await.json();
    assert_eq!(titles(&second), ["three"]);
    assert_eq!(second["next_after"], Value::Null);
    let text = first.to_string() + &second.to_string();
    assert!(!text.contains("owner"), "responses carry no owner ids: {text}");
}

#[sqlx::test]
async fn page_sizes_are_bounded_and_unknown_parameters_refused(pool: Pool) {
    let app = TestApp::new(pool).await;
    let ann = app.signed_up("ann@example.com").await.access;
    for query in ["limit=0", "limit=101", "limit=lots", "after=not-a-uuid", "owner-INVENTED=someone"] {
        let response = app.get_as(&format!("/api/v1/notes?{query}"), &ann).await;
        let error = response.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
        let text = error.to_string();
        assert!(!text.contains("someone") && !text.contains("lots") && !text.contains("INVENTED"), "{error}");
    }
    assert_eq!(app.get_as("/api/v1/notes?limit=100", &ann).await.status, StatusCode::OK);
}

/// Another user's note answers exactly like a note that does not exist.
#[sqlx::test]
async fn another_users_note_is_indistinguishable_from_a_missing_one(pool: Pool) {
    let app = TestApp::new(pool).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let bob = app.signed_up("bob@example.com").await.access;
    let note = create(&app, &ann, "private").await;
    let id = note["id"].as_str().expect("id");
    let missing = uuid::Uuid::now_v7();
    for method in ["GET", "PATCH", "DELETE"] {
        let body = json!({"title": "hijacked"});
        let theirs = app.call(method, &format!("/api/v1/notes/{id}"), Some(&bob), Some(&body)).await;
        let absent = app.call(method, &format!("/api/v1/notes/{missing}"), Some(&bob), Some(&body)).await;
        let a = theirs.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        let b = absent.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        assert_eq!(a["message"], b["message"], "{method}");
    }
    let still = app.get_as(&format!("/api/v1/notes/{id}"), &ann).await.json();
    assert_eq!(still["title"], "private", "nothing changed");
}

#[sqlx::test]
async fn admins_read_any_note_but_change_none_but_their_own(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let admin_id = app.register("admin@example.com").await["id"].as_str().expect("id").to_owned();
    grant_admin(&pool, &admin_id).await;
    let admin = app.login("admin@example.com", PASSWORD).await.access;
    let id = create(&app, &ann, "ann's").await["id"].as_str().expect("id").to_owned();
    assert_eq!(app.get_as(&format!("/api/v1/notes/{id}"), &admin).await.status, StatusCode::OK);
    let patch =
        app.call("PATCH", &format!("/api/v1/notes/{id}"), Some(&admin), Some(&json!({"title": "x"}))).await;
    patch.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let listed = app.get_as("/api/v1/notes", &admin).await.json();
    assert_eq!(listed["items"], json!([]), "the list shows the caller's own notes only");
}

/// Mass assignment: fields a client does not own are refused, not ignored.
#[sqlx::test]
async fn clients_cannot_set_ids_owners_or_timestamps(pool: Pool) {
    let app = TestApp::new(pool).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let id = create(&app, &ann, "mine").await["id"].as_str().expect("id").to_owned();
    for field in ["id", "owner_id", "created_at", "updated_at"] {
        let mut body = json!({"title": "t"});
        body[field] = json!("00000000-0000-0000-0000-000000000000");
        let created = app.post("/api/v1/notes", Some(&ann), &body).await;
        let error = created.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
        assert_eq!(error["details"][0]["field"], "body", "{field}");
        let patched = app.call("PATCH", &format!("/api/v1/notes/{id}"), Some(&ann), Some(&body)).await;
        patched.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    }
}

#[sqlx::test]
async fn malformed_input_gets_the_right_4xx(pool: Pool) {
    let app = TestApp::new(pool).await;
    let ann = app.signed_up("ann@example.com").await.access;
    app.get_as("/api/v1/notes/not-a-uuid", &ann).await.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let long = json!({"title": "t", "body": "x".repeat(2_001)});
    let error = app
        .post("/api/v1/notes", Some(&ann), &long)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(error["details"][0]["field"], "body");
    let huge = json!({"title": "t", "body": "x".repeat(40 * 1024)});
    app.post("/api/v1/notes", Some(&ann), &huge)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    let control = json!({"title": "line\nbreak"});
    app.post("/api/v1/notes", Some(&ann), &control)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    let request = axum::http::Request::post("/api/v1/notes")
        .header("authorization", format!("Bearer {ann}"))
        .header("content-type", "text/plain")
        .body(axum::body::Body::from("title"))
        .expect("request");
    app.send(request).await.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
    let array = app.post("/api/v1/notes", Some(&ann), &json!(["t", "body"])).await;
    let error = array.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(error["details"][0]["field"], "body", "a struct is never read from an array");
    let longest = json!({"title": "\u{10348}".repeat(200), "body": "\u{10348}".repeat(2_000)});
    let escaped = serde_json::to_string(&longest).expect("json").replace('\u{10348}', "\\ud800\\udf48");
    let request = axum::http::Request::post("/api/v1/notes")
        .header("authorization", format!("Bearer {ann}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(escaped))
        .expect("request");
    assert_eq!(app.send(request).await.status, StatusCode::CREATED, "the longest valid note always fits");
}
