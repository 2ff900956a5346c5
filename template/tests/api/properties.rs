//! Property-based tests: arbitrary input never panics a parser and never
//! makes the API answer 5xx; every refusal has the one error shape.

use std::sync::Arc;

use app::{
    db::Pool,
    domain::{DisplayName, Email, NoteBody, NoteTitle, Password},
};
use axum::{
    body::Body,
    http::{Request, header},
};
use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::Value;

use crate::helpers::{TestApp, TestResponse};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Parsing normalizes once: what comes out parses again to itself.
    #[test]
    fn emails_parse_to_a_fixed_point(input in ".{0,300}") {
        if let Ok(email) = Email::try_from(input) {
            prop_assert!(email.as_str().len() <= 254);
            prop_assert_eq!(Email::try_from(email.as_str().to_owned()), Ok(email));
        }
    }

    #[test]
    fn display_names_and_titles_stay_within_their_rules(input in "\\PC{0,80}|.{0,80}|\\s*") {
        if let Ok(name) = DisplayName::try_from(input.clone()) {
            prop_assert!((1..=64).contains(&name.as_str().chars().count()));
            prop_assert!(!name.as_str().chars().any(char::is_control));
        }
        if let Ok(title) = NoteTitle::try_from(input) {
            prop_assert!(!title.as_str().is_empty() && !title.as_str().chars().any(char::is_control));
        }
    }

    #[test]
    fn bodies_are_bounded(input in ".{0,20}|.{9990,10010}") {
        let chars = input.chars().count();
        prop_assert_eq!(NoteBody::try_from(input.clone()).is_ok(), chars <= 10_000 && !input.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')));
    }

    #[test]
    fn passwords_are_bounded(input in ".{0,140}") {
        let chars = input.chars().count();
        prop_assert_eq!(Password::try_from(input).is_ok(), (1..=128).contains(&chars));
    }
}

/// Any JSON: scalars, arrays and objects whose keys are sometimes the
/// real field names.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        "title",
        "body",
        "email",
        "password",
        "roles",
        "id",
        "owner_id",
        "refresh_token",
        ".{0,12}"
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|n| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
        ".{0,64}".prop_map(Value::from),
        "[a-z]{1,8}@[a-z]{1,8}\\.[a-z]{2,3}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn assert_no_server_error(response: &TestResponse, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(response.status.as_u16() < 500, "{what} answered {}", response.status);
    if response.status.is_client_error() {
        let body: Value =
            serde_json::from_slice(&response.body).map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert!(body["error"]["code"].is_string() && body["error"]["request_id"].is_string(), "{body}");
    }
    Ok(())
}

/// Runs the property on a blocking thread, each request driven by the
/// test's own runtime, which keeps serving the database meanwhile.
async fn check<S: Strategy + 'static>(
    strategy: impl FnOnce() -> S + Send + 'static,
    property: impl Fn(&tokio::runtime::Handle, S::Value) -> Result<(), TestCaseError> + Send + 'static,
) where
    S::Value: std::fmt::Debug,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(ProptestConfig::with_cases(96));
        runner.run(&strategy(), |value| property(&handle, value)).map_err(|err| err.to_string())
    })
    .await
    .expect("joined")
    .unwrap_or_else(|failure| panic!("{failure}"));
}

/// Objects shaped like a request, with arbitrary values: most reach the
/// handler, unlike fully random JSON, which the extractor refuses early.
fn shaped(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        4 => ".{0,300}".prop_map(Value::from),
        1 => "[a-z.+]{1,20}@[a-z]{1,10}\\.[a-z]{2,4}".prop_map(Value::from),
        1 => json(),
    ];
    prop::collection::vec((prop::sample::select(fields), value), 0..=fields.len()).prop_map(|pairs| {
        Value::Object(pairs.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
    })
}

#[sqlx::test]
async fn arbitrary_json_bodies_never_cause_a_server_error(pool: Pool) {
    let app = Arc::new(TestApp::new(pool).await);
    let token = app.signed_up("prop@example.com").await.access;
    let note = app.post("/api/v1/notes", Some(&token), &serde_json::json!({"title": "t"})).await.json();
    let note_path = format!("/api/v1/notes/{}", note["id"].as_str().expect("id"));
    let strategy = || {
        let note = prop_oneof![3 => shaped(&["title", "body"]), 1 => json()];
        let account = prop_oneof![3 => shaped(&["email", "password", "display_name"]), 1 => json()];
        let token = prop_oneof![3 => shaped(&["refresh_token"]), 1 => json()];
        (note, account, token)
    };
    check(strategy, move |handle, (note, account, refresh)| {
        for (method, path, auth, body) in [
            ("POST", "/api/v1/notes", true, &note),
            ("PATCH", note_path.as_str(), true, &note),
            ("POST", "/api/v1/auth/register", false, &account),
            ("POST", "/api/v1/auth/login", false, &account),
            ("POST", "/api/v1/auth/refresh", false, &refresh),
        ] {
            let response =
                handle.block_on(app.call(method, path, auth.then_some(token.as_str()), Some(body)));
            assert_no_server_error(&response, &format!("{method} {path} with {body}"))?;
        }
        Ok(())
    })
    .await;
}

#[sqlx::test]
async fn arbitrary_bytes_queries_and_ids_never_cause_a_server_error(pool: Pool) {
    let app = Arc::new(TestApp::new(pool).await);
    let token = app.signed_up("prop@example.com").await.access;
    let strategy = || (prop::collection::vec(any::<u8>(), 0..256), ".{0,40}", ".{0,40}");
    check(strategy, move |handle, (bytes, query, segment)| {
        let request = Request::post("/api/v1/notes")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(bytes))
            .expect("request");
        assert_no_server_error(&handle.block_on(app.send(request)), "raw bytes")?;
        let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
        let list = format!("/api/v1/notes?limit={}&after={}", encode(&query), encode(&segment));
        assert_no_server_error(&handle.block_on(app.get_as(&list, &token)), &list)?;
        let one = format!("/api/v1/notes/{}", encode(&segment));
        assert_no_server_error(&handle.block_on(app.get_as(&one, &token)), &one)?;
        Ok(())
    })
    .await;
}
