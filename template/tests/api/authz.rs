//! Authorization: every route's policy, proven for every kind of caller.

use app::{authz::ROUTES, db::Pool};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, app_state, config, grant_admin};

/// Routes served besides the documented operations: the docs UI and the
/// document itself.
const UNDOCUMENTED: &[(&str, &str)] =
    &[("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/"), ("GET", "/docs/{*rest}")];

fn documented_operations() -> Vec<(String, String)> {
    let document = serde_json::to_value(app::http::openapi()).expect("document");
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

fn served_routes() -> Vec<(String, String)> {
    let mut routes = documented_operations();
    routes.extend(UNDOCUMENTED.iter().map(|(method, path)| ((*method).to_owned(), (*path).to_owned())));
    routes
}

/// Deny by default, checked: a served route without a row in
/// `authz::ROUTES` fails here (and is refused at run time); so does a row
/// for a route that is not served.
#[test]
fn every_served_route_has_exactly_one_policy() {
    let served = served_routes();
    for (method, path) in &served {
        assert!(
            ROUTES.iter().any(|row| row.method == method && row.path == path),
            "{method} {path} is served but has no row in authz::ROUTES"
        );
    }
    for row in ROUTES {
        assert!(
            served.iter().any(|(method, path)| method == row.method && path == row.path),
            "authz::ROUTES has a row for {} {}, which is not served",
            row.method,
            row.path
        );
    }
}

#[test]
fn the_public_routes_are_a_short_explicit_list() {
    let public: Vec<String> = ROUTES
        .iter()
        .filter(|row| row.access == app::authz::Access::Public)
        .map(|row| format!("{} {}", row.method, row.path))
        .collect();
    assert_eq!(
        public,
        [
            "GET /healthz",
            "GET /readyz",
            "GET /.well-known/jwks.json",
            "GET /openapi.json",
            "GET /docs",
            "GET /docs/",
            "GET /docs/{*rest}",
            "POST /api/v1/auth/register",
            "POST /api/v1/auth/login",
            "POST /api/v1/auth/refresh",
            "POST /api/v1/auth/logout",
            "GET /api/v1/auth/oidc/login",
            "GET /api/v1/auth/oidc/callback",
            "POST /api/v1/auth/verify-email",
            "POST /api/v1/auth/password-reset",
            "POST /api/v1/auth/password-reset/confirm",
        ],
        "a new public route must be added here on purpose"
    );
}

#[sqlx::test]
async fn every_non_public_route_refuses_anonymous_callers(pool: Pool) {
    let app = TestApp::new(pool).await;
    for row in ROUTES.iter().filter(|row| row.access != app::authz::Access::Public) {
        let uri = row.path.replace("{id}", &uuid::Uuid::new_v4().to_string()).replace("{*rest}", "index.css");
        let response = app.call(row.method, &uri, None, Some(&json!({}))).await;
        response.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
}

/// Who calls, in the order each row is tried: state-changing successes come
/// last, so the earlier callers meet the object as it was set up.
#[derive(Clone, Copy, Debug)]
enum Caller {
    Anonymous,
    OtherUser,
    Owner,
    Admin,
}

const CALLERS: [Caller; 4] = [Caller::Anonymous, Caller::OtherUser, Caller::Owner, Caller::Admin];

/// One row per route: the request and the status each caller gets, in the
/// order of `CALLERS`. `{id}` is an object the owner creates first (see
/// `on_object`) and `{user}` another account, both fresh for the row.
pub struct Row {
    method: &'static str,
    path: String,
    body: Option<Value>,
    statuses: [u16; 4],
    /// Where the object of `{id}` is created, and with what body.
    object: Option<(&'static str, Value)>,
    /// Who creates it: the owner, or an admin where only admins may.
    creator: Caller,
}

pub fn row(method: &'static str, path: &str, body: Option<Value>, statuses: [u16; 4]) -> Row {
    Row { method, path: path.to_owned(), body, statuses, object: None, creator: Caller::Owner }
}

/// A row about one object of the owner's: created in `collection` with
/// `object` before the row, then called at `collection/{id}`.
pub fn on_object(
    method: &'static str,
    (collection, object): (&'static str, Value),
    body: Option<Value>,
    statuses: [u16; 4],
) -> Row {
    Row {
        method,
        path: format!("{collection}/{{id}}"),
        body,
        statuses,
        object: Some((collection, object)),
        creator: Caller::Owner,
    }
}

/// A row about one object of the admin's, for the resources only admins
/// reach (`cargo xtask scaffold --admin-only`).
#[allow(dead_code, reason = "used by the resources `cargo xtask scaffold --admin-only` writes")]
pub fn on_admins_object(
    method: &'static str,
    object: (&'static str, Value),
    body: Option<Value>,
    statuses: [u16; 4],
) -> Row {
    Row { creator: Caller::Admin, ..on_object(method, object, body, statuses) }
}

/// The authorization matrix. Adding a route means adding its row: the test
/// fails when a route of `authz::ROUTES` has none. `cargo xtask scaffold`
/// adds the rows of each resource it writes (its tests' `matrix_rows`).
fn matrix() -> Vec<Row> {
    let roles = || Some(json!({"roles": ["user"]}));
    // Statuses: anonymous, other user, owner, admin.
    let mut rows = vec![
        row("GET", "/healthz", None, [200, 200, 200, 200]),
        row("GET", "/readyz", None, [200, 200, 200, 200]),
        row("GET", "/.well-known/jwks.json", None, [200, 200, 200, 200]),
        row("GET", "/openapi.json", None, [200, 200, 200, 200]),
        row("GET", "/docs", None, [303, 303, 303, 303]),
        row("GET", "/docs/", None, [200, 200, 200, 200]),
        row("GET", "/docs/{*rest}", None, [200, 200, 200, 200]),
        row(
            "POST",
            "/api/v1/auth/register",
            Some(json!({"email": "new@example.com", "password": PASSWORD})),
            [202, 202, 202, 202],
        ),
        row(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"email": "owner@example.com", "password": PASSWORD})),
            [200, 200, 200, 200],
        ),
        row("POST", "/api/v1/auth/refresh", Some(json!({"refresh_token": "unknown"})), [401, 401, 401, 401]),
        row("POST", "/api/v1/auth/logout", Some(json!({"refresh_token": "unknown"})), [204, 204, 204, 204]),
        row("GET", "/api/v1/auth/oidc/login", None, [404, 404, 404, 404]),
        row("GET", "/api/v1/auth/oidc/callback", None, [404, 404, 404, 404]),
        row("GET", "/api/v1/me", None, [401, 200, 200, 200]),
        row("POST", "/api/v1/auth/logout-all", None, [401, 204, 204, 204]),
        row(
            "POST",
            "/api/v1/auth/password",
            Some(
                json!({"current_password": "not the password at all", "new_password": "another long passphrase"}),
            ),
            [401, 422, 422, 422],
        ),
        row("POST", "/api/v1/auth/verify-email", Some(json!({"token": "unknown"})), [422, 422, 422, 422]),
        row("POST", "/api/v1/auth/verify-email/resend", None, [401, 202, 202, 202]),
        row(
            "POST",
            "/api/v1/auth/password-reset",
            Some(json!({"email": "owner@example.com"})),
            [202, 202, 202, 202],
        ),
        row(
            "POST",
            "/api/v1/auth/password-reset/confirm",
            Some(json!({"token": "unknown", "new_password": "another long passphrase"})),
            [422, 422, 422, 422],
        ),
        row(
            "POST",
            "/api/v1/me/email",
            Some(json!({"current_password": "not the password at all", "new_email": "moved@example.com"})),
            [401, 422, 422, 422],
        ),
        row("GET", "/api/v1/admin/users", None, [401, 403, 403, 200]),
        row("PUT", "/api/v1/admin/users/{user}/roles", roles(), [401, 403, 403, 200]),
        row("POST", "/api/v1/admin/users/{user}/disable", None, [401, 403, 403, 204]),
        row("POST", "/api/v1/admin/users/{user}/unlock", None, [401, 403, 403, 204]),
        row("GET", "/api/v1/admin/audit", None, [401, 403, 403, 200]),
        row("POST", "/api/v1/auth/oidc/link", None, [401, 404, 404, 404]),
    ];
    // The rows of each scaffolded resource follow.
    rows.extend(crate::notes::matrix_rows());
    rows
}

/// The policy table's path for a matrix row.
fn route_of(path: &str) -> String {
    path.replace("{user}", "{id}")
}

#[test]
fn the_matrix_has_a_row_for_every_route() {
    let rows = matrix();
    for policy in ROUTES {
        assert!(
            rows.iter().any(|row| row.method == policy.method && route_of(&row.path) == policy.path),
            "no matrix row for {} {}",
            policy.method,
            policy.path
        );
    }
}

struct World {
    app: TestApp,
    other: String,
    owner: String,
    admin: String,
}

async fn world(pool: Pool) -> World {
    let app = TestApp::new(pool.clone()).await;
    app.register("owner@example.com").await;
    app.register("other@example.com").await;
    let admin_id = app.register("admin@example.com").await["id"].as_str().expect("id").to_owned();
    grant_admin(&pool, &admin_id).await;
    let mut world = World { app, other: String::new(), owner: String::new(), admin: String::new() };
    world.log_in().await;
    world
}

impl World {
    /// Fresh sessions for every caller (a row may end theirs: logout-all).
    async fn log_in(&mut self) {
        self.owner = self.app.login("owner@example.com", PASSWORD).await.access;
        self.other = self.app.login("other@example.com", PASSWORD).await.access;
        self.admin = self.app.login("admin@example.com", PASSWORD).await.access;
    }

    fn token(&self, caller: Caller) -> Option<&str> {
        match caller {
            Caller::Anonymous => None,
            Caller::OtherUser => Some(&self.other),
            Caller::Owner => Some(&self.owner),
            Caller::Admin => Some(&self.admin),
        }
    }
}

#[sqlx::test]
async fn every_caller_gets_what_the_matrix_says(pool: Pool) {
    let mut world = world(pool).await;
    for (index, row) in matrix().iter().enumerate() {
        world.log_in().await;
        let mut path = row.path.clone();
        if let Some((collection, object)) = &row.object {
            let created = world.app.call("POST", collection, world.token(row.creator), Some(object)).await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&created.body));
            path = path.replace("{id}", created.json()["id"].as_str().expect("id"));
        }
        let target = world.app.register(&format!("target{index}@example.com")).await;
        let path =
            path.replace("{user}", target["id"].as_str().expect("id")).replace("{*rest}", "swagger-ui.css");
        for (caller, expected) in CALLERS.into_iter().zip(row.statuses) {
            let response = world.app.call(row.method, &path, world.token(caller), row.body.as_ref()).await;
            assert_eq!(
                response.status.as_u16(),
                expected,
                "{} {} as {caller:?}: {}",
                row.method,
                row.path,
                String::from_utf8_lossy(&response.body)
            );
        }
    }
}

/// Deny by default, at run time: a route served under the policy layer
/// without a row in `authz::ROUTES` is refused, whoever calls.
#[sqlx::test]
async fn a_route_without_a_policy_row_is_refused(pool: Pool) {
    let config = config();
    let state = app_state(pool, config.clone()).await;
    #[expect(clippy::disallowed_methods, reason = "a probe route, not an API operation")]
    let probe = axum::Router::new()
        .route("/probe/without-policy", axum::routing::get(|| async { "reached" }))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), app::http::policy::enforce))
        .with_state(state);
    let app = TestApp::probe(probe, &config);
    app.get("/probe/without-policy").await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
}
