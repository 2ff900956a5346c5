//! Notes (scaffolded): the object rules, the input rules and the scopes,
//! for every caller: anonymous, another user, the owner and an admin.

use app::db::Pool;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{
    authz::{Row, on_object, row},
    helpers::{PASSWORD, TestApp, grant_admin, reissued},
};

const PATH: &str = "/api/v1/notes";

/// A body that keeps every rule (other tests build theirs from it).
pub fn valid() -> Value {
    json!({"title": "A value", "body": "Some text\nover lines", })
}

/// This resource's rows of the authorization matrix (`authz::matrix`):
/// anonymous, another user, the owner, an admin.
pub fn matrix_rows() -> Vec<Row> {
    let object = || (PATH, valid());
    vec![
        row("GET", PATH, None, [401, 200, 200, 200]),
        row("POST", PATH, Some(valid()), [401, 201, 201, 201]),
        on_object("GET", object(), None, [401, 404, 200, 200]),
        on_object("PATCH", object(), Some(valid()), [401, 404, 200, 404]),
        on_object("DELETE", object(), None, [401, 404, 204, 404]),
    ]
}

async fn create(app: &TestApp, token: &str) -> String {
    let response = app.post(PATH, Some(token), &valid()).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&response.body));
    format!("{PATH}/{}", response.json()["id"].as_str().expect("id"))
}

/// The owner's whole round, each change in the audit trail.
#[sqlx::test]
async fn an_owner_creates_reads_lists_changes_and_deletes(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let path = create(&app, &ann).await;
    let read = app.get_as(&path, &ann).await;
    assert_eq!(read.status, StatusCode::OK);
    for (field, value) in valid().as_object().expect("object") {
        assert_eq!(&read.json()[field], value, "{field}");
    }
    assert!(!read.json().to_string().contains("owner"), "no owner id is shown");
    let listed = app.get_as(PATH, &ann).await.json();
    assert_eq!(listed["items"].as_array().expect("items").len(), 1);
    let patched = app.call("PATCH", &path, Some(&ann), Some(&json!({"title": "Changed"}))).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", String::from_utf8_lossy(&patched.body));
    assert_eq!(patched.json()["title"], json!("Changed"));
    let deleted = app.call("DELETE", &path, Some(&ann), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get_as(&path, &ann).await.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let id = path.rsplit('/').next().expect("id");
    for action in ["created", "updated", "deleted"] {
        let event = crate::audit::event(&pool, &format!("notes.{action}")).await;
        let target = (event.target_kind.as_deref(), event.target_id.as_deref());
        assert_eq!(target, (Some("note"), Some(id)), "{action}");
    }
}

/// Every rule is checked while parsing, names its field and never echoes the
/// input; fields a client does not own are refused, not ignored.
#[sqlx::test]
async fn input_that_breaks_a_rule_is_refused_naming_its_field(pool: Pool) {
    let app = TestApp::new(pool).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let path = create(&app, &ann).await;
    let broken: Vec<(&str, Value)> =
        vec![("title", json!("x".repeat(201))), ("body", json!("x".repeat(10_001)))];
    for (field, value) in broken {
        let mut body = valid();
        body[field] = value;
        let created = app.post(PATH, Some(&ann), &body).await;
        let error = created.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
        assert_eq!(error["details"][0]["field"], field, "{error}");
        let patched = app.call("PATCH", &path, Some(&ann), Some(&json!({field: body[field]}))).await;
        patched.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    }
    for field in ["id", "owner_id", "created_at", "updated_at", "unknown"] {
        let mut body = valid();
        body[field] = json!("00000000-0000-0000-0000-000000000000");
        let refused = app.post(PATH, Some(&ann), &body).await;
        refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    }
}

/// The ownership matrix: anonymous callers are refused, another user finds
/// an owner's note missing, the owner does everything, an admin
/// reads it and changes nothing but their own.
#[sqlx::test]
async fn each_caller_gets_what_the_ownership_rules_say(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let owner = app.signed_up("owner@example.com").await.access;
    let other = app.signed_up("other@example.com").await.access;
    let admin_id = app.register("admin@example.com").await["id"].as_str().expect("id").to_owned();
    grant_admin(&pool, &admin_id).await;
    let admin = app.login("admin@example.com", PASSWORD).await.access;
    let path = create(&app, &owner).await;
    let anonymous = [("GET", PATH), ("POST", PATH), ("GET", &path), ("PATCH", &path), ("DELETE", &path)];
    for (method, uri) in anonymous {
        let response = app.call(method, uri, None, Some(&valid())).await;
        response.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    assert_eq!(app.get_as(&path, &other).await.status, StatusCode::NOT_FOUND);
    let listed = app.get_as(PATH, &other).await.json();
    assert_eq!(listed["items"].as_array().expect("items").len(), 0);
    assert_eq!(app.get_as(&path, &admin).await.status, StatusCode::OK);
    let missing = format!("{PATH}/{}", uuid::Uuid::now_v7());
    for caller in [&other, &admin] {
        for method in ["PATCH", "DELETE"] {
            let theirs = app.call(method, &path, Some(caller), Some(&json!({}))).await;
            let absent = app.call(method, &missing, Some(caller), Some(&json!({}))).await;
            let theirs = theirs.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
            assert_eq!(theirs["message"], absent.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND")["message"]);
        }
    }
    assert_eq!(app.get_as(&path, &owner).await.status, StatusCode::OK, "nothing changed it");
}

/// Scopes are enforced, not only listed: a token that may only read
/// notes reads them and writes none.
#[sqlx::test]
async fn a_token_that_may_only_read_writes_nothing(pool: Pool) {
    let app = TestApp::new(pool).await;
    let full = app.signed_up("ann@example.com").await.access;
    let path = create(&app, &full).await;
    let read_only = reissued(&full, |claims| claims["scope"] = json!("notes:read"));
    assert_eq!(app.get_as(PATH, &read_only).await.status, StatusCode::OK);
    assert_eq!(app.get_as(&path, &read_only).await.status, StatusCode::OK);
    for (method, uri) in [("POST", PATH), ("PATCH", path.as_str()), ("DELETE", path.as_str())] {
        let response = app.call(method, uri, Some(&read_only), Some(&valid())).await;
        response.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    }
}

/// A note of the given title, created by `token`.
async fn create_titled(app: &TestApp, token: &str, title: &str) -> Value {
    let response = app.post(PATH, Some(token), &json!({"title": title, "body": "text"})).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&response.body));
    response.json()
}

#[sqlx::test]
async fn a_user_lists_only_their_own_notes_page_by_page(pool: Pool) {
    let app = TestApp::new(pool).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let bob = app.signed_up("bob@example.com").await.access;
    for title in ["one", "two", "three"] {
        create_titled(&app, &ann, title).await;
    }
    create_titled(&app, &bob, "bob's").await;

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

#[sqlx::test]
async fn malformed_input_gets_the_right_4xx(pool: Pool) {
    let app = TestApp::new(pool).await;
    let ann = app.signed_up("ann@example.com").await.access;
    app.get_as("/api/v1/notes/not-a-uuid", &ann).await.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let long = json!({"title": "t", "body": "x".repeat(10_001)});
    let error = app
        .post("/api/v1/notes", Some(&ann), &long)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    assert_eq!(error["details"][0]["field"], "body");
    let huge = json!({"title": "t", "body": "x".repeat(130 * 1024)});
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
    let longest = json!({"title": "\u{10348}".repeat(200), "body": "\u{10348}".repeat(10_000)});
    let escaped = serde_json::to_string(&longest).expect("json").replace('\u{10348}', "\\ud800\\udf48");
    let request = axum::http::Request::post("/api/v1/notes")
        .header("authorization", format!("Bearer {ann}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(escaped))
        .expect("request");
    assert_eq!(app.send(request).await.status, StatusCode::CREATED, "the longest valid note always fits");
}
