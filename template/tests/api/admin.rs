//! The admin API: listing, roles, disabling, and the last admin.

use app::db::Pool;
use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, grant_admin};

async fn admin(app: &TestApp, pool: &Pool, email: &str) -> (String, String) {
    let id = app.register(email).await["id"].as_str().expect("id").to_owned();
    grant_admin(pool, &id).await;
    (id, app.login(email, PASSWORD).await.access)
}

#[sqlx::test]
async fn admins_list_accounts_page_by_page_without_secrets(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let (_, token) = admin(&app, &pool, "admin@example.com").await;
    for i in 0..3 {
        app.register(&format!("user{i}@example.com")).await;
    }
    let first = app.get_as("/api/v1/admin/users?limit=3", &token).await;
    assert_eq!(first.status, StatusCode::OK);
    let first = first.json();
    assert_eq!(first["items"].as_array().map(Vec::len), Some(3));
    let after = first["next_after"].as_str().expect("more");
    let second = app.get_as(&format!("/api/v1/admin/users?limit=3&after={after}"), &token).await.json();
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
    let text = format!("{first}{second}");
    assert!(
        !text.contains("argon2") && !text.contains("password") && !text.contains("failed_logins"),
        "{text}"
    );
}

#[sqlx::test]
async fn disabling_an_account_stops_its_tokens_at_once(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let (_, admin_token) = admin(&app, &pool, "admin@example.com").await;
    let ann = app.signed_up("ann@example.com").await;
    let me = app.get_as("/api/v1/me", &ann.access).await.json();
    let id = me["subject"].as_str().expect("id");

    let response =
        app.post(&format!("/api/v1/admin/users/{id}/disable"), Some(&admin_token), &json!({})).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    app.get_as("/api/v1/me", &ann.access).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    app.refresh(&ann.refresh).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN");
    let login = json!({"email": "ann@example.com", "password": PASSWORD});
    app.post("/api/v1/auth/login", None, &login)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
}

#[sqlx::test]
async fn roles_set_by_admins_take_effect_at_once_even_on_tokens_already_issued(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let (_, admin_token) = admin(&app, &pool, "admin@example.com").await;
    let ann_id = app.register("ann@example.com").await["id"].as_str().expect("id").to_owned();
    let ann_before = app.login("ann@example.com", PASSWORD).await.access;
    let uri = format!("/api/v1/admin/users/{ann_id}/roles");
    let response = app.call("PUT", &uri, Some(&admin_token), Some(&json!({"roles": ["admin"]}))).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json()["roles"], json!(["user", "admin"]), "user is always kept");
    assert_eq!(
        app.get_as("/api/v1/admin/users", &ann_before).await.status,
        StatusCode::OK,
        "granted at once"
    );

    let demote = app.call("PUT", &uri, Some(&admin_token), Some(&json!({"roles": []}))).await;
    assert_eq!(demote.status, StatusCode::OK);
    let me = app.get_as("/api/v1/me", &ann_before).await.json();
    assert_eq!(me["roles"], json!(["user"]), "the principal's roles are the current ones");
    app.get_as("/api/v1/admin/users", &ann_before).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");

    let unknown = app.call("PUT", &uri, Some(&admin_token), Some(&json!({"roles": ["root"]}))).await;
    unknown.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
    let missing = format!("/api/v1/admin/users/{}/roles", uuid::Uuid::new_v4());
    let response = app.call("PUT", &missing, Some(&admin_token), Some(&json!({"roles": []}))).await;
    response.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[sqlx::test]
async fn admins_cannot_lock_themselves_out_and_another_admin_may(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let (id, token) = admin(&app, &pool, "admin@example.com").await;
    let (_, second) = admin(&app, &pool, "second@example.com").await;
    let own_account =
        "Administrators cannot disable their own account or drop their own admin role; another admin must.";
    let demote = app
        .call("PUT", &format!("/api/v1/admin/users/{id}/roles"), Some(&token), Some(&json!({"roles": []})))
        .await;
    assert_eq!(demote.assert_error(StatusCode::CONFLICT, "CONFLICT")["message"], own_account);
    let disable = app.post(&format!("/api/v1/admin/users/{id}/disable"), Some(&token), &json!({})).await;
    assert_eq!(disable.assert_error(StatusCode::CONFLICT, "CONFLICT")["message"], own_account);

    let demoted = app
        .call("PUT", &format!("/api/v1/admin/users/{id}/roles"), Some(&second), Some(&json!({"roles": []})))
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "another admin may");
}

/// Two admins acting on each other at the same moment: the check "is another
/// admin left?" and the change happen as one step, so whatever the
/// interleaving, an active admin remains. Repeated, since a race shows only
/// sometimes.
#[sqlx::test]
async fn two_admins_acting_on_each_other_at_once_always_leave_one(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let demote = Some(json!({"roles": []}));
    for round in 0..12 {
        // Only this round's two accounts are admins.
        sqlx::query("DELETE FROM user_roles WHERE role = 'admin'").execute(&pool).await.expect("reset");
        let (a, a_token) = admin(&app, &pool, &format!("a{round}@example.com")).await;
        let (b, b_token) = admin(&app, &pool, &format!("b{round}@example.com")).await;
        let (a_acts, b_acts) = match round % 3 {
            0 => (
                ("PUT", format!("/api/v1/admin/users/{b}/roles")),
                ("PUT", format!("/api/v1/admin/users/{a}/roles")),
            ),
            1 => (
                ("POST", format!("/api/v1/admin/users/{b}/disable")),
                ("POST", format!("/api/v1/admin/users/{a}/disable")),
            ),
            _ => (
                ("PUT", format!("/api/v1/admin/users/{b}/roles")),
                ("POST", format!("/api/v1/admin/users/{a}/disable")),
            ),
        };
        let body = |method: &str| if method == "PUT" { demote.clone() } else { Some(json!({})) };
        let (a_body, b_body) = (body(a_acts.0), body(b_acts.0));
        let (first, second) = tokio::join!(
            app.call(a_acts.0, &a_acts.1, Some(&a_token), a_body.as_ref()),
            app.call(b_acts.0, &b_acts.1, Some(&b_token), b_body.as_ref()),
        );
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM user_roles JOIN users ON users.id = user_roles.user_id \
             WHERE user_roles.role = 'admin' AND users.disabled_at IS NULL",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        let statuses = [first.status, second.status];
        assert_eq!(left, 1, "round {round}: {statuses:?}");
        // The loser is refused by the guard (409), or, when the winner
        // committed first, no longer holds the role or an active account.
        assert_eq!(
            statuses.iter().filter(|status| status.is_success()).count(),
            1,
            "round {round}: {statuses:?}"
        );
    }
}

/// The per-address login throttle, lifted by an admin.
#[sqlx::test]
async fn admins_unlock_a_throttled_account(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    let (_, admin_token) = admin(&app, &pool, "admin@example.com").await;
    let ann = app.register("ann@example.com").await["id"].as_str().expect("id").to_owned();
    let from = std::net::IpAddr::from([127, 0, 0, 66]);
    let wrong = json!({"email": "ann@example.com", "password": "not the password at all"});
    let right = json!({"email": "ann@example.com", "password": PASSWORD});
    for _ in 0..10 {
        app.post_from(from, "/api/v1/auth/login", None, &wrong).await;
    }
    app.post_from(from, "/api/v1/auth/login", None, &right)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");

    let uri = format!("/api/v1/admin/users/{ann}/unlock");
    let ann_token = app.login("ann@example.com", PASSWORD).await.access;
    app.post(&uri, Some(&ann_token), &json!({})).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let response = app.post(&uri, Some(&admin_token), &json!({})).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(app.post_from(from, "/api/v1/auth/login", None, &right).await.status, StatusCode::OK);
    let missing = format!("/api/v1/admin/users/{}/unlock", uuid::Uuid::new_v4());
    app.post(&missing, Some(&admin_token), &json!({})).await.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}
