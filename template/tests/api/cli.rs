//! The binary's subcommands, run as a deployment runs them.

use std::{
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use app::db::Pool;
use serde_json::json;
use sqlx::ConnectOptions;

use crate::{
    BIN, audit,
    helpers::{PASSWORD, TestApp},
};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let data = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(BIN);
    command.args(args).env("APP_TLS__DEV_CERT_DIR", data.path()).env("APP_SERVER__HTTPS_ADDR", "127.0.0.1:0");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn openapi_prints_the_served_document() {
    let output = run(&["openapi"], &[]);
    assert!(output.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(printed, serde_json::to_value(app::http::openapi()).expect("JSON"));
}

#[test]
fn check_config_reports_development_defaults_as_unfit_for_production() {
    let output = run(&["check-config"], &[]);
    assert!(output.status.success(), "development may run on development defaults");
    let printed = stdout(&output);
    assert!(printed.contains("env = \"development\""), "{printed}");
    assert!(printed.contains("Fit for production: no") && printed.contains("tls.cert_path"), "{printed}");
}

#[test]
fn check_config_fails_in_production_with_unsafe_settings() {
    let output = run(&["check-config"], &[("APP_ENV", "production")]);
    assert!(!output.status.success());
    assert!(stdout(&output).contains("tls.cert_path"));
}

#[test]
fn check_config_never_prints_the_database_password() {
    let url = "postgres://svc:hunter2-secret@db.internal:5432/app";
    let output = run(&["check-config"], &[("APP_DATABASE__URL", url)]);
    let printed = stdout(&output);
    assert!(printed.contains("db.internal") && !printed.contains("hunter2"), "{printed}");
}

#[test]
fn serve_refuses_to_start_in_production_with_development_settings() {
    let output = run(&["serve"], &[("APP_ENV", "production")]);
    assert!(!output.status.success());
    let errors = stderr(&output);
    assert!(
        errors.contains("refusing to start in production") && errors.contains("tls.cert_path"),
        "{errors}"
    );
    for refused in ["auth.keys_dir", "encryption.keys", "mail.transport"] {
        assert!(errors.contains(refused), "every problem is listed at once, {refused} too: {errors}");
    }
}

/// With the documented production settings (a real certificate, token
/// keys of its own, mail over TLS, a secret from a file), production passes
/// `check-config`, serves, answers its healthcheck and keeps its docs private.
#[sqlx::test]
async fn serve_starts_in_production_with_the_documented_settings(pool: Pool) {
    let data = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let file = |name: &str| data.path().join(name);
    let (cert, key, secret, data_keys) =
        (file("cert.pem"), file("key.pem"), file("smtp-password"), file("data-keys"));
    std::fs::write(&cert, pair.cert.pem()).expect("write certificate");
    std::fs::write(&key, pair.signing_key.serialize_pem()).expect("write key");
    std::fs::write(&secret, "vT4q-Zr8m-Kd2w-Hn6p\n").expect("write secret");
    std::fs::write(&data_keys, "2026-11:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n").expect("write keys");
    let database = pool.connect_options().to_url_lossy().to_string();
    let production = |args: &[&str]| {
        let mut command = against(&pool, &data, args);
        command
            .env("APP_ENV", "production")
            .env("APP_SERVER__HTTPS_ADDR", format!("127.0.0.1:{port}"))
            .env("APP_SERVER__PUBLIC_URL", format!("https://localhost:{port}"))
            .env("APP_TLS__CERT_PATH", &cert)
            .env("APP_TLS__KEY_PATH", &key)
            .env("APP_MAIL__TRANSPORT", "smtp")
            .env("APP_MAIL__SMTP__HOST", "mail.example.com")
            .env("APP_MAIL__SMTP__USERNAME", "api")
            .env("APP_MAIL__SMTP__PASSWORD_FILE", &secret)
            .env("APP_ENCRYPTION__KEYS_FILE", &data_keys);
        if database.starts_with("postgres") {
            // The tests' PostgreSQL is plain TCP on loopback: the documented waiver.
            command.env("APP_DATABASE__ALLOW_PLAINTEXT_ON_PRIVATE_NETWORK", "true");
        }
        command
    };
    let keys = production(&["rotate-keys"]).output().expect("runs");
    assert!(keys.status.success(), "{}", stderr(&keys));
    let checked = production(&["check-config"]).output().expect("runs");
    assert!(checked.status.success(), "{}{}", stdout(&checked), stderr(&checked));

    let mut child = production(&["serve"]).spawn().expect("spawn");
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let listening = tokio::task::spawn_blocking(move || {
        lines.map_while(Result::ok).any(|line| line.contains("listening"))
    });
    assert!(listening.await.expect("joined"), "production never listened");
    let alive = production(&["healthcheck"]).output().expect("runs");
    assert!(alive.status.success(), "{}", stderr(&alive));
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pair.cert.pem().as_bytes()).expect("PEM")])
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .expect("client");
    let docs = client.get(format!("https://localhost:{port}/openapi.json")).send().await.expect("answers");
    assert_eq!(docs.status(), reqwest::StatusCode::NOT_FOUND, "production serves its docs unasked");
    drop((docs, client));
    stop_beside_the_runtime(child).await;
}

#[test]
fn a_bad_setting_is_named_with_its_variable() {
    let output = run(&["check-config"], &[("APP_SERVER__BODY_LIMIT_BYTES", "lots")]);
    assert!(!output.status.success());
    let errors = stderr(&output);
    assert!(
        errors.contains("server.body_limit_bytes") && errors.contains("APP_SERVER__BODY_LIMIT_BYTES"),
        "{errors}"
    );
}

#[test]
fn rotate_keys_retires_the_signing_key_and_keeps_it_for_verification() {
    let keys = tempfile::tempdir().expect("tempdir");
    let dir = keys.path().to_str().expect("UTF-8 path");
    let first = run(&["rotate-keys"], &[("APP_AUTH__KEYS_DIR", dir)]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(keys.path().join("signing.pem").exists());
    let second = run(&["rotate-keys", "--stage"], &[("APP_AUTH__KEYS_DIR", dir)]);
    assert!(second.status.success() && keys.path().join("next.pem").exists(), "{}", stderr(&second));
    let third = run(&["rotate-keys", "--promote"], &[("APP_AUTH__KEYS_DIR", dir)]);
    assert!(third.status.success(), "{}", stderr(&third));
    let retired = std::fs::read_dir(keys.path())
        .expect("dir")
        .filter(|entry| entry.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with("retired-")))
        .count();
    assert_eq!(retired, 1, "the promoted-away key verifies until its tokens expire");
    assert!(!keys.path().join("next.pem").exists());
}

/// The first admin: created from a password on standard input or in a
/// file, never one on the command line.
#[sqlx::test]
async fn create_admin_reads_the_password_from_standard_input_or_a_file_never_the_command_line(pool: Pool) {
    let url = pool.connect_options().to_url_lossy().to_string();
    let data = tempfile::tempdir().expect("tempdir");
    let admin = |args: &[&str]| {
        let mut command = Command::new(BIN);
        command
            .args(["create-admin", "--email"])
            .args(args)
            .env("APP_DATABASE__URL", &url)
            .env("APP_AUTH__KEYS_DIR", data.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };

    let argv =
        admin(&["root@example.com", "--password", "correct horse battery staple"]).output().expect("runs");
    assert_eq!(argv.status.code(), Some(2), "there is no --password flag");

    let mut child = admin(&["root@example.com"]).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(b"correct horse battery staple\n").expect("write");
    let created = child.wait_with_output().expect("wait");
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stdout(&created).contains("created administrator root@example.com"), "{}", stdout(&created));
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT role FROM user_roles JOIN users ON users.id = user_roles.user_id WHERE email = 'root@example.com' ORDER BY role",
    )
    .fetch_all(&pool)
    .await
    .expect("roles");
    assert_eq!(roles, ["admin", "user"]);

    let file = data.path().join("password");
    std::fs::write(&file, "too short\n").expect("write");
    let weak =
        admin(&["weak@example.com", "--password-file", file.to_str().expect("path")]).output().expect("runs");
    assert!(!weak.status.success() && stderr(&weak).contains("at least 12"), "{}", stderr(&weak));
}

/// The binary with `args`, against the test's database, with its keys and
/// certificate in `data`.
fn against(pool: &Pool, data: &tempfile::TempDir, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("APP_DATABASE__URL", pool.connect_options().to_url_lossy().to_string())
        .env("APP_AUTH__KEYS_DIR", data.path().join("jwt"))
        .env("APP_TLS__DEV_CERT_DIR", data.path().join("tls"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Starts `serve` on a free port with JSON logs and the certificate and key
/// at these paths; returns the child and its HTTPS address. Its log is read
/// on in the background, so that the child never blocks on a full pipe.
fn serve_with_certificate(mut serve: Command, cert: &Path, key: &Path) -> (Child, SocketAddr) {
    serve
        .env("APP_SERVER__HTTPS_ADDR", "127.0.0.1:0")
        .env("APP_LOG__FORMAT", "json")
        .env("APP_TLS__CERT_PATH", cert)
        .env("APP_TLS__KEY_PATH", key);
    let mut child = serve.spawn().expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let line: serde_json::Value = serde_json::from_str(&line).ok()?;
            line["fields"]["https"].as_str()?.parse::<std::net::SocketAddr>().ok()
        })
        .expect("serve logs its address");
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    (child, addr)
}

/// Runs `command`, typing `input` on its standard input.
fn typed(mut command: Command, input: &str) -> Output {
    let mut child = command.spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(format!("{input}\n").as_bytes()).expect("write");
    child.wait_with_output().expect("wait")
}

async fn roles_of(pool: &Pool, email: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT role FROM user_roles JOIN users ON users.id = user_roles.user_id WHERE email = $1 ORDER BY role",
    )
    .bind(email)
    .fetch_all(pool)
    .await
    .expect("roles")
}

/// Whoever registered an address first must not become admin because an
/// operator ran `create-admin` for it: promoting an existing account is
/// asked for explicitly and proven with that account's own password.
#[sqlx::test]
async fn create_admin_never_promotes_an_existing_account_without_its_password(pool: Pool) {
    let data = tempfile::tempdir().expect("tempdir");
    TestApp::new(pool.clone()).await.register("root@example.com").await;
    // The app's audit writer is done before another process writes.
    audit::event(&pool, "account.registered").await;

    let plain = typed(
        against(&pool, &data, &["create-admin", "--email", "root@example.com"]),
        "an operator passphrase",
    );
    assert!(!plain.status.success(), "{}", stdout(&plain));
    assert!(stderr(&plain).contains("--promote-existing"), "{}", stderr(&plain));
    let promote = ["create-admin", "--email", "root@example.com", "--promote-existing"];
    let wrong = typed(against(&pool, &data, &promote), "an operator passphrase");
    assert!(!wrong.status.success(), "a password that is not the account's: {}", stdout(&wrong));
    assert_eq!(roles_of(&pool, "root@example.com").await, ["user"]);

    let right = typed(against(&pool, &data, &promote), PASSWORD);
    assert!(right.status.success(), "{}", stderr(&right));
    assert!(stdout(&right).contains("granted admin"), "{}", stdout(&right));
    assert_eq!(roles_of(&pool, "root@example.com").await, ["admin", "user"]);
}

/// An operator can lift the login throttle of any account, admins included,
/// without the API.
#[sqlx::test]
async fn unlock_account_lifts_the_login_throttle(pool: Pool) {
    let data = tempfile::tempdir().expect("tempdir");
    let app = TestApp::new(pool.clone()).await;
    app.register("ann@example.com").await;
    let from = std::net::IpAddr::from([127, 0, 0, 66]);
    for _ in 0..10 {
        let wrong = json!({"email": "ann@example.com", "password": "not the password at all"});
        app.post_from(from, "/api/v1/auth/login", None, &wrong).await;
    }
    let right = json!({"email": "ann@example.com", "password": PASSWORD});
    assert_eq!(app.post_from(from, "/api/v1/auth/login", None, &right).await.status.as_u16(), 401);
    // The app's audit writer is done before another process writes.
    audit::events(&pool, "auth.login.failed", 11).await;

    let unlocked =
        against(&pool, &data, &["unlock-account", "--email", "ann@example.com"]).output().expect("runs");
    assert!(unlocked.status.success(), "{}", stderr(&unlocked));
    assert_eq!(app.post_from(from, "/api/v1/auth/login", None, &right).await.status.as_u16(), 200);
    let recorded = audit::event(&pool, "admin.account_unlocked").await;
    assert_eq!(recorded.actor_kind, "system", "the command line acts as the system");
}

/// A key rotation, the posture the service starts with and its stop are in
/// the audit trail: an auditor's first questions. The stop is signalled
/// while the service is still starting: a signal is never lost to the
/// start-up (its default action would end the process without a trace).
#[sqlx::test]
async fn key_rotations_start_up_and_shutdown_are_recorded_in_the_audit_trail(pool: Pool) {
    let data = tempfile::tempdir().expect("tempdir");
    let rotated = against(&pool, &data, &["rotate-keys", "--stage"]).output().expect("runs");
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    assert_eq!(audit::details(&audit::event(&pool, "keys.rotated").await)["step"], "stage");

    let mut serve = against(&pool, &data, &["serve"]);
    serve.env("APP_SERVER__HTTPS_ADDR", "127.0.0.1:0").env("APP_LOG__FORMAT", "json");
    let mut child = serve.spawn().expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    stop(&mut child);
    let log = lines.map_while(Result::ok).collect::<Vec<_>>().join("\n");
    let status = child.wait().expect("exited");
    assert!(status.success(), "{status}: {first}\n{log}");
    assert!(log.contains("\"listening\""), "it started all the same:\n{log}");
    let started = audit::event(&pool, "config.loaded").await;
    // Recorded after the last request, written before the process ended.
    let stopped = audit::event(&pool, "service.stopped").await;
    assert_eq!(stopped.actor_kind, "system");
    let posture = audit::details(&started);
    assert_eq!((started.actor_kind.as_str(), &posture["env"]), ("system", &json!("development")));
    let problems = posture["production_problems"].as_array().expect("a list of keys");
    assert!(problems.contains(&json!("tls.cert_path")), "{posture}");
    assert!(!started.details.contains("postgres://") && !started.details.contains("sqlite:"), "no URL");
}

/// Development mode is the default, so that a laptop needs no settings; a
/// service that listens beyond loopback in development mode was most likely
/// deployed by mistake, and starts only when development was chosen
/// explicitly.
#[sqlx::test]
async fn development_mode_on_a_public_address_must_be_chosen_explicitly(pool: Pool) {
    let data = tempfile::tempdir().expect("tempdir");
    let mut implicit = against(&pool, &data, &["serve"]);
    implicit.env("APP_SERVER__HTTPS_ADDR", "0.0.0.0:0").env_remove("APP_ENV");
    let mut child = implicit.spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started in implicit development mode on 0.0.0.0");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = child.wait_with_output().expect("output");
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("APP_ENV=development"), "{}", stderr(&refused));

    let mut explicit = against(&pool, &data, &["serve"]);
    explicit.env("APP_SERVER__HTTPS_ADDR", "0.0.0.0:0").env("APP_ENV", "development");
    let mut child = explicit.spawn().expect("spawn");
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(lines.map_while(Result::ok).any(|line| line.contains("listening")));
    });
    let listening = rx.recv_timeout(Duration::from_secs(30)).unwrap_or(false);
    stop(&mut child);
    assert!(listening, "explicit development mode serves");
}

/// A renewed certificate is served after SIGHUP, without a restart: new
/// connections get the new pair. A pair that does not load is refused and
/// the current one kept.
#[sqlx::test]
async fn sighup_reloads_the_certificate_without_a_restart(pool: Pool) {
    let data = tempfile::tempdir().expect("tempdir");
    let (cert_path, key_path) = (data.path().join("cert.pem"), data.path().join("key.pem"));
    let issue = || {
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        std::fs::write(&cert_path, pair.cert.pem()).expect("write certificate");
        std::fs::write(&key_path, pair.signing_key.serialize_pem()).expect("write key");
        pair.cert.pem()
    };
    let first = issue();
    let (mut child, addr) = serve_with_certificate(against(&pool, &data, &["serve"]), &cert_path, &key_path);
    let trusts = |pem: &str| {
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).expect("PEM")])
            .resolve("localhost", addr)
            .build()
            .expect("client");
        async move { client.get(format!("https://localhost:{}/healthz", addr.port())).send().await.is_ok() }
    };
    assert!(trusts(&first).await, "the configured certificate is served");

    let renewed = issue();
    let hangup = |child: &std::process::Child| {
        let sent = Command::new("kill").arg("-HUP").arg(child.id().to_string()).status().expect("kill");
        assert!(sent.success());
    };
    hangup(&child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !trusts(&renewed).await {
        assert!(Instant::now() < deadline, "the renewed certificate is not served after SIGHUP");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!trusts(&first).await, "new connections still get the old certificate");

    std::fs::write(&key_path, "not a key").expect("break the key");
    hangup(&child);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(trusts(&renewed).await, "a pair that does not load replaced the working one");
    assert!(child.try_wait().expect("wait").is_none(), "a bad renewal stopped the service");
    stop_beside_the_runtime(child).await;
}

/// `healthcheck` succeeds while the service serves on this machine and
/// fails once it stopped: what a container's HEALTHCHECK runs.
#[sqlx::test]
async fn healthcheck_answers_whether_the_service_serves(pool: Pool) {
    let data = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let on_port = |args: &[&str]| {
        let mut command = against(&pool, &data, args);
        command
            .env("APP_SERVER__HTTPS_ADDR", format!("127.0.0.1:{port}"))
            .env("APP_SERVER__PUBLIC_URL", format!("https://localhost:{port}"));
        command
    };
    let mut child = on_port(&["serve"]).spawn().expect("spawn");
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let listening = tokio::task::spawn_blocking(move || {
        lines.map_while(Result::ok).any(|line| line.contains("listening"))
    });
    assert!(listening.await.expect("joined"), "serve never listened");
    let alive = on_port(&["healthcheck"]).output().expect("runs");
    assert!(alive.status.success(), "{}", stderr(&alive));
    stop(&mut child);
    let gone = on_port(&["healthcheck"]).output().expect("runs");
    assert!(!gone.status.success(), "a stopped service passed the healthcheck");
}

/// `stop`, off the test's single runtime thread: the closing of this test's
/// own client connections runs on that thread, and the child's drain
/// would wait for them.
async fn stop_beside_the_runtime(mut child: std::process::Child) {
    tokio::task::spawn_blocking(move || stop(&mut child)).await.expect("stopped");
}

/// Stops a serving child as an orchestrator does, with SIGTERM: killed, it
/// would leave SQLite's write-ahead log behind for the next test that gets
/// the same database file.
fn stop(child: &mut std::process::Child) {
    let signalled = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    if !signalled.is_ok_and(|status| status.success()) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// SIGTERM under load, over HTTP/1.1 and HTTP/2 keep-alive connections:
/// every request sent before the signal is answered (over HTTP/1.1 with
/// `Connection: close`), new connections are refused once it arrived, and
/// the process exits within its grace period.
#[sqlx::test]
async fn sigterm_under_load_loses_no_request_sent_before_it(pool: Pool) {
    let data = tempfile::tempdir().expect("tempdir");
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let (cert, key) = (data.path().join("cert.pem"), data.path().join("key.pem"));
    std::fs::write(&cert, pair.cert.pem()).expect("write certificate");
    std::fs::write(&key, pair.signing_key.serialize_pem()).expect("write key");
    let mut serve = against(&pool, &data, &["serve"]);
    serve
        .env("APP_SERVER__SHUTDOWN_GRACE_SECS", "5")
        .env("APP_RATE_LIMIT__CREDENTIALS__REQUESTS", "1000000")
        // Room for every login at once: shed ones (503) would hide what the
        // drain does.
        .env("APP_AUTH__MAX_QUEUED_HASHES", "64");
    let (mut child, addr) = serve_with_certificate(serve, &cert, &key);
    let client = |http1: bool| {
        let builder = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(pair.cert.pem().as_bytes()).expect("PEM")])
            .resolve("localhost", addr);
        if http1 { builder.http1_only() } else { builder }.build().expect("client")
    };
    // A login costs a password hash, so requests are in flight when the
    // signal comes; an unknown account answers 401 every time.
    let url = format!("https://localhost:{}/api/v1/auth/login", addr.port());
    let guess = json!({"email": "nobody@example.com", "password": "not the password at all"});
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for n in 0..16 {
        let (client, url, stop, guess) = (client(n % 2 == 0), url.clone(), stop.clone(), guess.clone());
        workers.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let at = std::time::Instant::now();
                let outcome = client.post(&url).json(&guess).send().await.map(|response| {
                    let closing = response.headers().get("connection").is_some_and(|value| value == "close");
                    (response.status().as_u16(), closing)
                });
                let answered = std::time::Instant::now();
                sent.push((at, answered, outcome.map_err(|err| format!("{err:?}"))));
            }
            (n % 2 == 0, sent)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let signalled = std::time::Instant::now();
    let pid = child.id();
    assert!(Command::new("kill").arg("-TERM").arg(pid.to_string()).status().expect("kill").success());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "a new connection was accepted after SIGTERM");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let exited = tokio::task::spawn_blocking(move || child.wait()).await.expect("joined").expect("exit");
    assert!(exited.success(), "{exited:?}");
    let took = signalled.elapsed();
    assert!(took < std::time::Duration::from_secs(5), "exited {took:?} after SIGTERM, past its grace period");
    let (mut before, mut drained) = ((0, Vec::new()), (0, 0));
    for worker in workers {
        let (http1, sent) = worker.await.expect("worker");
        for (at, answered, outcome) in sent {
            if at < signalled {
                before.0 += 1;
                if !matches!(outcome, Ok((401, _))) {
                    before.1.push(outcome.clone());
                }
            }
            // HTTP/1.1 keep-alive clients are told to close: answers during
            // the drain say `Connection: close`.
            if http1 && at < signalled && answered > signalled {
                drained.0 += 1;
                drained.1 += usize::from(matches!(outcome, Ok((_, true))));
            }
        }
    }
    assert!(before.0 > 10, "too little load: {}", before.0);
    // Client-side times only bound the server's (a late reader may see an
    // answer sent before the signal), so this asks for one, not for all.
    assert!(drained.1 > 0, "of {} HTTP/1.1 answers during the drain, none said Connection: close", drained.0);
    assert!(
        before.1.is_empty(),
        "of {} requests sent before SIGTERM, these failed: {:?}",
        before.0,
        before.1
    );
}
