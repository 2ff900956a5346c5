//! What every request pays for, measured in release mode:
//! `cargo bench --bench hot_paths`. Compare before and after a change to a
//! hot path; never assert timings in tests.
//!
//! Uses the database at `APP_DATABASE__URL` (else the default one), token
//! keys in a temporary directory and, for the shared rate limits, the Redis
//! at `BENCH_REDIS_URL` (default `redis://127.0.0.1:6379`). Each path runs
//! for `BENCH_BUDGET_MS` (default 2000; `scripts/bench --smoke` runs it
//! briefly in CI so that it keeps working).

extern crate {{crate_name}} as app;

use std::{
    hint::black_box,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use app::{
    AppState,
    config::Config,
    db, http,
    rate_limit::{Class, Key},
};
use axum::{body::Body, extract::ConnectInfo, http::Request};
use figment::Figment;
use tower::ServiceExt;

/// Runs `work` repeatedly for about `budget` and prints the time per call.
fn measure(name: &str, budget: Duration, mut work: impl FnMut()) {
    for _ in 0..100 {
        work();
    }
    let (mut calls, started) = (0_u32, Instant::now());
    while started.elapsed() < budget {
        work();
        calls += 1;
    }
    let per_call = started.elapsed() / calls;
    println!("{name:<48} {per_call:>10.2?} per call ({calls} calls)");
}

/// Limits high enough that the benchmark is never refused: it measures
/// what counting costs.
fn unreachable_limits(figment: Figment) -> Figment {
    ["anonymous", "authenticated", "credentials", "mail"].into_iter().fold(figment, |figment, class| {
        figment
            .merge((format!("rate_limit.{class}.requests"), u32::MAX))
            .merge((format!("rate_limit.{class}.window_secs"), 1))
    })
}

/// A request with a body that the policy refuses before the body is read:
/// what the body-limit layer adds to every such request over HTTP/1.1.
fn refused_post(runtime: &tokio::runtime::Runtime, router: &axum::Router, client: IpAddr, budget: Duration) {
    measure("POST /api/v1/notes without a token, body unread (refused: 401)", budget, || {
        let mut request = Request::post("/api/v1/notes")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"title":"Groceries","body":"Milk, eggs"}"#))
            .expect("request");
        request.extensions_mut().insert(ConnectInfo(SocketAddr::new(client, 40_000)));
        let response = runtime.block_on(router.clone().oneshot(request)).expect("infallible");
        assert_eq!(response.status().as_u16(), 401);
        black_box(response);
    });
}

fn main() -> anyhow::Result<()> {
    let keys = tempfile::tempdir()?;
    let mut figment = unreachable_limits(Config::defaults().merge(("auth.keys_dir", keys.path())));
    // `scripts/bench` gives the benchmark a throwaway database.
    if let Ok(url) = std::env::var("APP_DATABASE__URL") {
        figment = figment.merge(("database.url", url));
    }
    let config = Config::from_figment(&figment)?;
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let shared_config = Config::from_figment(
        &figment
            .merge(("rate_limit.redis_url", redis_url))
            .merge(("rate_limit.redis_key_prefix", format!("bench-{}:", uuid::Uuid::new_v4())))
            .merge(("rate_limit.on_redis_failure", "deny")),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (state, shared_state, token) = runtime.block_on(async {
        let pool = db::connect(&config).await?;
        db::migrate(&pool).await?;
        let state = AppState::new(config.clone(), pool.clone())?;
        let shared_state = AppState::new(shared_config, pool.clone())?;
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4());
        let email = app::domain::Email::try_from(email).map_err(anyhow::Error::msg)?;
        let password = app::domain::Password::try_from("correct horse battery staple".to_owned())
            .map_err(anyhow::Error::msg)?;
        let registration = app::auth::accounts::Registration {
            email: email.clone(),
            password: password.clone(),
            display_name: None,
        };
        app::auth::accounts::register(&pool, &state.auth, &state.audit, &state.mail, registration).await?;
        let user =
            db::users::find_by_email(&pool, &email).await?.ok_or_else(|| anyhow::anyhow!("registered"))?;
        db::users::mark_email_verified(&pool, user.id).await?;
        let client = IpAddr::from([127, 0, 0, 1]);
        let pair =
            app::auth::accounts::login(&pool, &state.auth, &state.audit, &email, &password, client).await?;
        anyhow::Ok((state, shared_state, pair.access_token))
    })?;
    let budget = std::env::var("BENCH_BUDGET_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_millis);

    measure("access token: verify (remembered after the first)", budget, || {
        black_box(state.auth.tokens.verify(black_box(&token)).is_ok());
    });
    measure("route policy: look up", budget, || {
        black_box(app::authz::policy("PATCH", black_box("/api/v1/notes/{id}")));
    });
    let client = IpAddr::from([127, 0, 0, 1]);
    for (store, limiter) in [("memory", &state.rate_limits), ("redis", &shared_state.rate_limits)] {
        measure(&format!("rate limit: one charge ({store})"), budget, || {
            let charge = runtime.block_on(limiter.charge(Class::Authenticated, Key::Address(client)));
            assert!(charge.is_ok(), "the {store} store answers");
            black_box(charge.ok());
        });
    }
    let router = http::router(state.clone());
    let shared_router = http::router(shared_state.clone());
    let call_on = |router: &axum::Router, path: &'static str, bearer: bool| {
        let mut request = Request::get(path);
        if bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let mut request = request.body(Body::empty()).expect("request");
        request.extensions_mut().insert(ConnectInfo(SocketAddr::new(client, 40_000)));
        let response = runtime.block_on(router.clone().oneshot(request)).expect("infallible");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response
    };
    let call = |path: &'static str, bearer: bool| call_on(&router, path, bearer);
    measure("GET /healthz through the whole stack", budget, || {
        black_box(call("/healthz", false));
    });
    refused_post(&runtime, &router, client, budget);
    measure("GET /api/v1/notes (token + account check + query)", budget, || {
        black_box(call("/api/v1/notes", true));
    });
    measure("GET /api/v1/me, limits shared in Redis", budget, || {
        black_box(call_on(&shared_router, "/api/v1/me", true));
    });
    measure("GET /api/v1/me, limits in memory", budget, || {
        black_box(call("/api/v1/me", true));
    });
    measure("audit: queue one event (the request's share)", budget, || {
        state.audit.record(app::audit::Event::new("bench.event", app::audit::Outcome::Success));
    });
    measure("audit: append one event in its own transaction", budget / 4, || {
        let event = app::audit::Event::new("bench.event", app::audit::Outcome::Success);
        assert!(runtime.block_on(app::audit::append_now(&state.db, event)).is_ok(), "appended");
    });
    let nobody = uuid::Uuid::nil();
    measure("account check alone (state, session and roles)", budget, || {
        black_box(runtime.block_on(db::users::access_state(&state.db, nobody, Some(nobody))).is_ok());
    });
    Ok(())
}
