//! What every request pays for, measured in release mode:
//! `cargo bench --bench hot_paths`. Compare before and after a change to a
//! hot path; never assert timings in tests.
//!
//! Uses the database of the configuration (the defaults, or `APP_…`), and
//! token keys in a temporary directory.

extern crate {{crate_name}} as app;

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use app::{AppState, auth::Auth, config::Config, db, http};
use axum::{body::Body, http::Request};
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

fn main() -> anyhow::Result<()> {
    let keys = tempfile::tempdir()?;
    let config = Config::from_figment(&Config::defaults().merge(("auth.keys_dir", keys.path())))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (state, token) = runtime.block_on(async {
        let pool = db::connect(&config).await?;
        db::migrate(&pool).await?;
        let auth = Arc::new(Auth::new(&config).await?);
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4());
        let email = app::domain::Email::try_from(email).map_err(anyhow::Error::msg)?;
        let password = app::domain::Password::try_from("correct horse battery staple".to_owned())
            .map_err(anyhow::Error::msg)?;
        let mail = Arc::new(app::mail::Mailer::start(&config, pool.clone())?);
        let registration = app::auth::accounts::Registration {
            email: email.clone(),
            password: password.clone(),
            display_name: None,
        };
        app::auth::accounts::register(&pool, &auth, &mail, registration).await?;
        let user =
            db::users::find_by_email(&pool, &email).await?.ok_or_else(|| anyhow::anyhow!("registered"))?;
        db::users::mark_email_verified(&pool, user.id).await?;
        let client = std::net::IpAddr::from([127, 0, 0, 1]);
        let pair = app::auth::accounts::login(&pool, &auth, &email, &password, client).await?;
        let state = AppState { config: Arc::new(config.clone()), db: pool, auth, mail };
        anyhow::Ok((state, pair.access_token))
    })?;
    let budget = Duration::from_secs(2);

    measure("access token: verify", budget, || {
        black_box(state.auth.tokens.verify(black_box(&token)).is_ok());
    });
    measure("route policy: look up", budget, || {
        black_box(app::authz::policy("PATCH", black_box("/api/v1/notes/{id}")));
    });
    let router = http::router(state.clone());
    let call = |path: &'static str, bearer: bool| {
        let mut request = Request::get(path);
        if bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Body::empty()).expect("request");
        runtime.block_on(router.clone().oneshot(request)).expect("infallible")
    };
    measure("GET /healthz through the whole stack", budget, || {
        black_box(call("/healthz", false));
    });
    measure("GET /api/v1/notes (token + account check + query)", budget, || {
        black_box(call("/api/v1/notes", true));
    });
    let nobody = uuid::Uuid::nil();
    measure("account check alone (state, session and roles)", budget, || {
        black_box(runtime.block_on(db::users::access_state(&state.db, nobody, Some(nobody))).is_ok());
    });
    Ok(())
}
