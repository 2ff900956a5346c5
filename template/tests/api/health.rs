use app::db::Pool;
use axum::http::StatusCode;

use crate::helpers::TestApp;

#[sqlx::test]
async fn liveness_answers_ok(pool: Pool) {
    let response = TestApp::new(pool).await.get("/healthz").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), serde_json::json!({"status": "ok"}));
}

#[sqlx::test]
async fn readiness_answers_ok_while_the_database_answers(pool: Pool) {
    let response = TestApp::new(pool).await.get("/readyz").await;
    assert_eq!(response.status, StatusCode::OK);
}

#[sqlx::test]
async fn readiness_answers_503_without_detail_when_the_database_is_gone(pool: Pool) {
    let app = TestApp::new(pool.clone()).await;
    pool.close().await;
    let response = until_not_ready(&app).await;
    let error = response.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    let message = error["message"].as_str().expect("message").to_lowercase();
    assert_eq!(message, "not ready: database.");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}

/// `/readyz` once the background probe saw the outage (within about a
/// second), each answer itself at once.
async fn until_not_ready(app: &TestApp) -> crate::helpers::TestResponse {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let asked = std::time::Instant::now();
        let response = app.get("/readyz").await;
        assert!(
            asked.elapsed() < std::time::Duration::from_millis(500),
            "/readyz took {:?}",
            asked.elapsed()
        );
        if response.status != StatusCode::OK || std::time::Instant::now() > deadline {
            return response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// What a `Proxy` does with the connections through it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    Open,
    /// Every connection dropped, new ones closed at once.
    Cut,
    /// Connections held open with nothing forwarded: a database that hangs.
    /// Stalled connections are dropped when the link changes again.
    Stalled,
}

/// A TCP proxy between the service and PostgreSQL that a test can cut,
/// stall and restore. It counts the connections it is asked for.
struct Proxy {
    port: u16,
    link: tokio::sync::watch::Sender<Link>,
    attempts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        use std::sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (link, watching) = tokio::sync::watch::channel(Link::Open);
        let attempts = Arc::new(AtomicUsize::new(0));
        let counted = attempts.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut link = watching.clone();
                tokio::spawn(async move {
                    let state = *link.borrow_and_update();
                    if state == Link::Open {
                        let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                            _ = link.changed() => {}
                        }
                        if *link.borrow_and_update() == Link::Stalled {
                            let _ = link.changed().await; // both ends held meanwhile
                        }
                    } else if state == Link::Stalled {
                        let _ = link.changed().await;
                    }
                });
            }
        });
        Self { port, link, attempts }
    }

    fn attempts(&self) -> usize {
        self.attempts.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn set(&self, link: Link) {
        self.link.send_replace(link);
    }

    /// The URL of `database` through this proxy.
    fn url_for(&self, database: &url::Url) -> url::Url {
        let mut proxied = database.clone();
        proxied.set_port(Some(self.port)).expect("port");
        proxied
    }
}

/// A database that stops answering is an outage, not a bug: requests that
/// need it answer 503 with Retry-After within the pool's acquire timeout,
/// /readyz says so at once and names the database, /healthz stays 200; once
/// the probe saw it, the circuit breaker answers at once without connecting;
/// once the database is back, requests succeed again without a restart.
#[sqlx::test]
async fn a_database_outage_answers_503_fast_and_heals_by_itself(pool: Pool) {
    use sqlx::ConnectOptions;
    let url = pool.connect_options().to_url_lossy();
    let Some(port) = url.port().filter(|_| url.scheme() == "postgres") else {
        // SQLite is a file in the process: the outage is its pool closing.
        let app = TestApp::new(pool.clone()).await;
        let ann = app.signed_up("ann@example.com").await.access;
        pool.close().await;
        let response = app.get_as("/api/v1/notes", &ann).await;
        response.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
        assert!(response.header("retry-after").parse::<u64>().is_ok_and(|secs| secs >= 1));
        return;
    };
    let proxy = Proxy::start(([127, 0, 0, 1], port).into()).await;
    let proxied = proxy.url_for(&url);
    let config = crate::helpers::config_with(|figment| figment.merge(("database.url", proxied.as_str())));
    let database = app::db::connect(&config).await.expect("connects through the proxy");
    let app = TestApp::with_state(crate::helpers::app_state(database, config).await);
    let ann = app.signed_up("ann@example.com").await.access;
    assert_eq!(app.get_as("/api/v1/notes", &ann).await.status, StatusCode::OK);

    proxy.set(Link::Cut);
    // The proxy drops open connections within 20 ms.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let response = app.get_as("/api/v1/notes", &ann).await;
    response.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert!(response.header("retry-after").parse::<u64>().is_ok_and(|secs| secs >= 1));
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
    let ready = until_not_ready(&app).await;
    let error = ready.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert_eq!(error["message"], "Not ready: database.");
    assert!(ready.header("retry-after").parse::<u64>().is_ok_and(|secs| secs >= 1));
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);

    // The circuit is open: requests are answered at once and cause no
    // connection attempt; only the probe tries, once a second.
    let (attempts, started) = (proxy.attempts(), std::time::Instant::now());
    for _ in 0..20 {
        let asked = std::time::Instant::now();
        let response = app.get_as("/api/v1/notes", &ann).await;
        response.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
        assert!(asked.elapsed() < std::time::Duration::from_millis(100), "took {:?}", asked.elapsed());
    }
    let probes = usize::try_from(started.elapsed().as_secs()).expect("seconds") + 1;
    assert!(proxy.attempts() - attempts <= probes, "{} connection attempts", proxy.attempts() - attempts);

    proxy.set(Link::Open);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.get_as("/api/v1/notes", &ann).await.status != StatusCode::OK {
        assert!(std::time::Instant::now() < deadline, "the service did not recover");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    until_status(&app, "/readyz", StatusCode::OK).await;
}

/// Redis down: the service counts limits in memory and stays ready, saying
/// it is degraded; when it refuses limited requests without Redis
/// (`on_redis_failure = "deny"`), it is not ready.
#[sqlx::test]
async fn redis_down_degrades_readiness_or_blocks_it_when_limits_need_it(pool: Pool) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let url = format!("redis://{closed}");
    for policy in ["memory", "deny"] {
        let config = crate::helpers::config_with(|figment| {
            figment
                .merge(("rate_limit.redis_url", url.as_str()))
                .merge(("rate_limit.on_redis_failure", policy))
        });
        let app = TestApp::with_config(pool.clone(), config).await;
        let response = until_not_ready_or_degraded(&app).await;
        if policy == "memory" {
            assert_eq!(response.status, StatusCode::OK);
            assert_eq!(response.json(), serde_json::json!({"status": "degraded", "degraded": ["redis"]}));
        } else {
            let error = response.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
            assert_eq!(error["message"], "Not ready: redis.");
        }
    }
}

async fn until_not_ready_or_degraded(app: &TestApp) -> crate::helpers::TestResponse {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let response = app.get("/readyz").await;
        if response.body != br#"{"status":"ok"}"#.as_slice() || std::time::Instant::now() > deadline {
            return response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A database that refuses writes is an outage as well, never a 500: a
/// full disk (SQLite: the file may not grow, the SQLITE_FULL a full disk
/// gives) or a read-only server (PostgreSQL: a replica, as after a
/// failover). Writes answer 503 with Retry-After and say nothing of why;
/// reads go on, and liveness is untouched.
#[sqlx::test]
async fn a_full_disk_or_read_only_database_answers_writes_503_and_reads_go_on(pool: Pool) {
    use futures_util::TryFutureExt;
    use sqlx::{ConnectOptions, Executor, pool::PoolOptions};
    let app = TestApp::new(pool.clone()).await;
    let ann = app.signed_up("ann@example.com").await.access;
    let note = serde_json::json!({"title": "kept", "body": "written before"});
    assert_eq!(app.call("POST", "/api/v1/notes", Some(&ann), Some(&note)).await.status, StatusCode::CREATED);

    let refuse_writes = if pool.connect_options().to_url_lossy().scheme() == "postgres" {
        "SET default_transaction_read_only = on".to_owned()
    } else {
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&pool).await.expect("pages");
        format!("PRAGMA max_page_count = {pages}")
    };
    // Every connection of the pool runs it, for the test's duration.
    let refuse_writes: &'static str = refuse_writes.leak();
    let full = PoolOptions::<app::db::Backend>::new()
        .after_connect(move |connection, _| Box::pin(connection.execute(refuse_writes).map_ok(drop)))
        .connect_with((*pool.connect_options()).clone())
        .await
        .expect("pool");
    let app = TestApp::with_state(crate::helpers::app_state(full, crate::helpers::config()).await);

    let big = "x".repeat(1900);
    for attempt in 0..200 {
        let note = serde_json::json!({"title": format!("note {attempt}"), "body": big});
        let response = app.call("POST", "/api/v1/notes", Some(&ann), Some(&note)).await;
        if response.status == StatusCode::CREATED {
            continue; // SQLite: room left in the last pages
        }
        let error = response.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
        assert!(response.header("retry-after").parse::<u64>().is_ok_and(|secs| secs >= 1));
        let said = error.to_string().to_lowercase();
        for detail in ["full", "read", "disk", "database", "sqlite", "postgres", "25006"] {
            assert!(!said.contains(detail), "{said}");
        }
        let list = app.get_as("/api/v1/notes", &ann).await;
        assert_eq!(list.status, StatusCode::OK, "reads go on");
        let titles = list.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|note| note["title"].clone())
            .collect::<Vec<_>>();
        assert!(titles.contains(&serde_json::json!("kept")), "{titles:?}");
        assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
        return;
    }
    panic!("200 notes of 2 KB fitted in a database that may not grow");
}

/// A database that hangs instead of failing ties up nothing else: while
/// writes wait on it (PostgreSQL: a link that forwards nothing; SQLite: a
/// write lock held by another process), `/healthz` and `/readyz` answer at
/// once, every waiting write ends with 503 and Retry-After within its bound
/// (the pool's acquire timeout; SQLite's busy timeout), and once the
/// database moves again so does the service.
#[sqlx::test]
async fn a_hanging_database_ties_up_neither_the_probes_nor_the_service(pool: Pool) {
    use sqlx::{ConnectOptions, Connection};
    let url = pool.connect_options().to_url_lossy();
    let proxy = match url.port().filter(|_| url.scheme() == "postgres") {
        Some(port) => Some(Proxy::start(([127, 0, 0, 1], port).into()).await),
        None => None,
    };
    let app = match &proxy {
        Some(proxy) => {
            let proxied = proxy.url_for(&url);
            let config =
                crate::helpers::config_with(|figment| figment.merge(("database.url", proxied.as_str())));
            let database = app::db::connect(&config).await.expect("connects through the proxy");
            TestApp::with_state(crate::helpers::app_state(database, config).await)
        }
        None => TestApp::new(pool.clone()).await,
    };
    let ann = app.signed_up("ann@example.com").await.access;

    let (mut lock, bound) = if let Some(proxy) = &proxy {
        proxy.set(Link::Stalled);
        (None, std::time::Duration::from_secs(3))
    } else {
        let mut other = pool.connect_options().connect().await.expect("a second connection");
        sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.expect("the write lock");
        (Some(other), std::time::Duration::from_secs(8))
    };
    let started = std::time::Instant::now();
    let writes = futures_util::future::join_all((0..16).map(|n| {
        let note = serde_json::json!({"title": format!("note {n}"), "body": "waits"});
        let (app, ann) = (&app, &ann);
        async move { app.call("POST", "/api/v1/notes", Some(ann), Some(&note)).await }
    }));
    let probes = async {
        for _ in 0..5 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            for probe in ["/healthz", "/readyz"] {
                let asked = std::time::Instant::now();
                let status = app.get(probe).await.status;
                assert!(
                    asked.elapsed() < std::time::Duration::from_millis(200),
                    "{probe}: {:?}",
                    asked.elapsed()
                );
                if probe == "/healthz" {
                    assert_eq!(status, StatusCode::OK);
                }
            }
        }
    };
    let (written, ()) = tokio::join!(writes, probes);
    assert!(started.elapsed() < bound, "the writes took {:?}", started.elapsed());
    for response in written {
        response.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
        assert!(response.header("retry-after").parse::<u64>().is_ok_and(|secs| secs >= 1));
    }

    match (&proxy, lock.take()) {
        (Some(proxy), _) => proxy.set(Link::Open),
        (None, Some(other)) => other.close().await.expect("the lock released"),
        (None, None) => unreachable!("SQLite holds a lock"),
    }
    let note = serde_json::json!({"title": "after", "body": "moves again"});
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.call("POST", "/api/v1/notes", Some(&ann), Some(&note)).await.status != StatusCode::CREATED {
        assert!(std::time::Instant::now() < deadline, "the service did not recover");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Redis cut off mid-run, through the same proxy, where limits need it
/// (`on_redis_failure = "deny"`): limited requests answer 503 with
/// Retry-After within the Redis timeout, `/readyz` names redis, `/healthz`
/// stays 200; restored, both recover without a restart.
#[sqlx::test]
async fn redis_cut_off_mid_run_answers_503_and_heals_by_itself(pool: Pool) {
    let proxy = Proxy::start(([127, 0, 0, 1], 6379).into()).await;
    let redis = format!("redis://127.0.0.1:{}", proxy.port);
    let config = crate::helpers::config_with(|figment| {
        figment.merge(("rate_limit.redis_url", redis.as_str())).merge(("rate_limit.on_redis_failure", "deny"))
    });
    let app = TestApp::with_config(pool, config).await;
    // The key set is a limited route that needs no account.
    let limited = "/.well-known/jwks.json";
    assert_eq!(app.get(limited).await.status, StatusCode::OK);
    until_status(&app, "/readyz", StatusCode::OK).await;

    proxy.set(Link::Cut);
    let started = std::time::Instant::now();
    let response = app.get(limited).await;
    response.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert!(response.header("retry-after").parse::<u64>().is_ok_and(|secs| secs >= 1));
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
    let ready = until_not_ready(&app).await;
    let error = ready.assert_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert_eq!(error["message"], "Not ready: redis.");
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);

    proxy.set(Link::Open);
    until_status(&app, limited, StatusCode::OK).await;
    until_status(&app, "/readyz", StatusCode::OK).await;
}

/// Asks for `uri` until it answers `status`, for at most five seconds.
async fn until_status(app: &TestApp, uri: &str, status: StatusCode) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let response = app.get(uri).await;
        if response.status == status {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{uri} answers {}, not {status}", response.status);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
