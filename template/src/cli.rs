//! The command line: `serve` (the default), `migrate`, `openapi`,
//! `check-config`, `healthcheck`, `rotate-keys`, `create-admin`,
//! `unlock-account`, `verify-audit`, `prune-audit` and `rotate-data-key`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::{
    AppState,
    admin::{self, AdminCreated, AdminError, ExistingAccount},
    audit::{
        self, Actor, Event, Outcome,
        chain::{self, VerifyError},
    },
    auth::{
        Auth,
        keys::{self, Rotation},
        oidc::login,
    },
    config::{Config, Environment},
    db,
    domain::{Email, Password},
    http, mail, maintenance, notes,
    server::{self, Server},
    telemetry,
};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file layered over the built-in defaults (environment variables
    /// named `APP_<SECTION>__<KEY>` still override it).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations, then serve HTTPS until SIGINT or SIGTERM (default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Print the effective configuration, secrets redacted, and whether it is
    /// fit for production. Exits non-zero when it is not fit for its `env`.
    CheckConfig,
    /// Ask the service running on this machine whether it is alive: GET
    /// /healthz at `server.https_addr`, its certificate verified for the
    /// host of `server.public_url`. Exits non-zero when it does not answer
    /// 200: a container HEALTHCHECK in an image with no shell or curl.
    Healthcheck,
    /// Rotate the keys that sign access tokens (in `auth.keys_dir`). Without
    /// a flag, stages a new key and promotes it at once; with several
    /// instances, `--stage`, roll out everywhere, then `--promote`.
    RotateKeys {
        /// Only add the next key, which verifies but does not sign yet.
        #[arg(long, conflicts_with = "promote")]
        stage: bool,
        /// Make the staged key the signing key and retire the current one.
        #[arg(long)]
        promote: bool,
    },
    /// Create the first administrator. The password is read from standard
    /// input or a file, never from the command line, where process lists and
    /// shell history show it.
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// Read the password from this file instead of standard input.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Grant admin to the account that has this email already; the
        /// password given must be that account's own (anyone may have
        /// registered the address first).
        #[arg(long)]
        promote_existing: bool,
    },
    /// Lift the login throttle of an account, admins included, without
    /// the API.
    UnlockAccount {
        #[arg(long)]
        email: String,
    },
    /// Walk the audit trail's hash chain; exits non-zero at the first
    /// broken or missing link, naming its row.
    VerifyAudit,
    /// Remove audit events older than `audit.retention_days`, keeping the
    /// chain verifiable.
    PruneAudit,
    /// Re-encrypt every value sealed at rest under another key than the
    /// first of `encryption.keys`, a batch at a time. The old keys keep
    /// opening meanwhile; stopped, it resumes where it was when run again.
    RotateDataKey {
        /// Values re-encrypted per batch (each batch is its own write).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
        batch: u32,
    },
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli).await {
        Ok(code) => code,
        Err(err) => {
            // Also on stderr for failures before logging is set up.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        println!("{}", http::openapi().to_pretty_json()?);
        return Ok(ExitCode::SUCCESS);
    }
    let config = Config::load(cli.config.as_deref())?;
    match command {
        Command::CheckConfig => Ok(check_config(&config)?),
        Command::Healthcheck => healthcheck(&config).await,
        Command::CreateAdmin { email, password_file, promote_existing } => {
            let _logs = telemetry::init(&config)?;
            let existing = if promote_existing {
                ExistingAccount::PromoteWithItsPassword
            } else {
                ExistingAccount::Refuse
            };
            create_admin(&config, &email, password_file.as_deref(), existing).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::UnlockAccount { email } => {
            let _logs = telemetry::init(&config)?;
            let email = Email::try_from(email).map_err(|reason| anyhow::anyhow!("--email {reason}"))?;
            let pool = db::connect(&config).await?;
            db::migrate(&pool).await?;
            match admin::unlock_by_email(&pool, &email).await {
                Ok(id) => println!("lifted the login throttle of {email} ({id})"),
                Err(AdminError::NoSuchAccount) => bail!("no account has the email {email}"),
                Err(err) => return Err(err.into()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RotateKeys { stage, promote } => {
            let (rotation, step) = match (stage, promote) {
                (true, _) => (Rotation::Stage, "stage"),
                (_, true) => (Rotation::Promote, "promote"),
                _ => (Rotation::StageAndPromote, "stage_and_promote"),
            };
            println!("{}", keys::rotate(&config.auth.keys_dir, rotation, config.auth.access_token_ttl)?);
            // The keys changed either way; a database that cannot be reached
            // only costs the record, which is said.
            let rotated =
                Event::new("keys.rotated", Outcome::Success).actor(Actor::system()).detail("step", step);
            let recorded = async {
                let pool = db::connect(&config).await?;
                db::migrate(&pool).await?;
                anyhow::Ok(audit::append_now(&pool, rotated).await?)
            };
            if let Err(err) = recorded.await {
                eprintln!("warning: the rotation is not in the audit trail: {err:#}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::VerifyAudit => verify_audit(&config).await,
        Command::PruneAudit => {
            let _logs = telemetry::init(&config)?;
            let pool = db::connect(&config).await?;
            db::migrate(&pool).await?;
            let pruned = audit::prune(&pool, config.audit.retention()).await?;
            match pruned.upto_seq {
                Some(upto) => println!("removed {} audit events, up to #{upto}", pruned.removed),
                None => println!("no audit event is older than {} days", config.audit.retention_days),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RotateDataKey { batch } => rotate_data_key(&config, batch).await,
        Command::Migrate => {
            let _logs = telemetry::init(&config)?;
            let pool = db::connect(&config).await?;
            db::migrate(&pool).await?;
            tracing::info!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            refuse_unsafe_production(&config)?;
            refuse_unchosen_development_exposure(&config)?;
            let _logs = telemetry::init(&config)?;
            serve(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => unreachable!("handled above"),
    }
}

/// Walks the audit trail's chain; a broken link is a failure exit, not an error.
async fn verify_audit(config: &Config) -> anyhow::Result<ExitCode> {
    let pool = db::connect(config).await?;
    db::migrate(&pool).await?;
    match chain::verify(&pool).await {
        Ok(verified) => {
            println!(
                "audit trail verified: {} events from #{}; head hash {}",
                verified.rows, verified.first_seq, verified.head_hash
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(VerifyError::Broken(broken)) => {
            println!("audit trail BROKEN: {broken}");
            Ok(ExitCode::FAILURE)
        }
        Err(VerifyError::Database(err)) => Err(err.into()),
    }
}

/// Re-encrypts every sealed value under the first data key.
async fn rotate_data_key(config: &Config, batch: u32) -> anyhow::Result<ExitCode> {
    let _logs = telemetry::init(config)?;
    let keys = config.encryption.data_keys()?;
    let pool = db::connect(config).await?;
    db::migrate(&pool).await?;
    let notes = notes::reseal_all(&pool, &keys, batch).await?;
    let logins = login::reseal_pending(&pool, &keys, batch).await?;
    let messages = mail::reseal_outbox(&pool, &keys, batch).await?;
    println!(
        "re-encrypted {} values ({notes} note bodies, {logins} pending logins, {messages} queued messages); \
         every sealed value is now under the key {}",
        notes + logins + messages,
        keys.current_id()
    );
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let shutdown = server::shutdown_signal().context("listening for shutdown signals")?;
    let pool = db::connect(&config).await?;
    db::migrate(&pool).await?;
    maintenance::spawn(pool.clone());
    let state = AppState::new(config, pool)?;
    let (config, readiness, audit) = (state.config.clone(), state.readiness.clone(), state.audit.clone());
    state.audit.record(config_loaded(&config));
    let server = Server::bind(&config, http::router(state))?;
    let base = config.server.public_url.as_str().trim_end_matches('/');
    tracing::info!(
        env = %config.env,
        https = %server.https_addr(),
        api = %base,
        docs = format!("{base}{}/", http::DOCS_PATH),
        "listening"
    );
    if let Some(addr) = server.http_redirect_addr() {
        tracing::info!(http = %addr, "redirecting plain HTTP to HTTPS");
    }
    // Not ready from the signal on, so that a load balancer stops sending
    // requests while the ones in flight drain.
    let drained = async move {
        shutdown.await;
        readiness.drain();
    };
    server.run(drained).await?;
    // The last events (this one included) reach the trail before the
    // process ends, within the same grace as the requests.
    audit.record(Event::new("service.stopped", Outcome::Success).actor(Actor::system()));
    if !audit.flush(config.server.shutdown_grace).await {
        tracing::error!("audit events were still queued at exit and are lost");
    }
    Ok(())
}

async fn healthcheck(config: &Config) -> anyhow::Result<ExitCode> {
    let public = &config.server.public_url;
    let host = public.host_str().context("server.public_url has no host")?;
    let listening = config.server.https_addr;
    // Listening on every address, it answers on loopback too.
    let local: SocketAddr = match listening.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, listening.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, listening.port()).into(),
        _ => listening,
    };
    // The served chain is trusted besides the system's roots, so that a
    // development or private-CA certificate verifies too; the name is the
    // public one, as clients see it.
    let served = config.tls.cert_path.clone().unwrap_or_else(|| config.tls.dev_cert_dir.join("cert.pem"));
    let chain = match std::fs::read(&served) {
        Ok(pem) => reqwest::Certificate::from_pem_bundle(&pem).context("the served certificate chain")?,
        Err(_) => Vec::new(),
    };
    let client = reqwest::Client::builder()
        .tls_certs_merge(chain)
        .resolve(host, local)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()?;
    let url = public.join("healthz")?;
    match client.get(url.clone()).send().await {
        Ok(answer) if answer.status().is_success() => Ok(ExitCode::SUCCESS),
        Ok(answer) => {
            eprintln!("{url} answered {}", answer.status());
            Ok(ExitCode::FAILURE)
        }
        Err(err) => {
            eprintln!("{url} via {local}: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The security posture the service starts with, for the audit trail: no
/// secret, only what an auditor asks first.
fn config_loaded(config: &Config) -> Event {
    let problems: Vec<&str> = config.production_problems().iter().map(|problem| problem.key).collect();
    Event::new("config.loaded", Outcome::Success)
        .actor(Actor::system())
        .detail("env", config.env.to_string())
        .detail("production_problems", problems)
        .detail("public_url", config.server.public_url.as_str())
        .detail("require_verified_email", config.auth.require_verified_email)
        .detail("oidc", config.oidc.issuer.as_ref().map(url::Url::as_str))
        .detail("rate_limits_shared", config.rate_limit.redis_url.is_some())
        .detail("trusted_proxies", config.server.trusted_proxies.len())
        .detail("docs_exposed", config.docs_exposed())
}

async fn create_admin(
    config: &Config,
    email: &str,
    password_file: Option<&Path>,
    existing: ExistingAccount,
) -> anyhow::Result<()> {
    let email = Email::try_from(email.to_owned()).map_err(|reason| anyhow::anyhow!("--email {reason}"))?;
    let secret = if let Some(path) = password_file {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
        line
    };
    let password = Password::try_from(secret.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|reason| anyhow::anyhow!("the password {reason}"))?;
    let pool = db::connect(config).await?;
    db::migrate(&pool).await?;
    let auth = Auth::new(config)?;
    match admin::create_admin(&pool, &auth, &email, &password, existing).await {
        Ok(AdminCreated::New(id)) => println!("created administrator {email} ({id})"),
        Ok(AdminCreated::Promoted(id)) => println!("granted admin to the existing account {email} ({id})"),
        Err(AdminError::WeakPassword(reason)) => bail!("the password {reason}"),
        Err(AdminError::AccountExists) => bail!(
            "an account with the email {email} exists already. To make it an administrator, run again \
             with --promote-existing and give that account's own password"
        ),
        Err(AdminError::NotTheAccountsPassword) => {
            bail!("that is not the password of the account {email}; nothing changed")
        }
        Err(AdminError::NoSuchAccount) => bail!("no account has the email {email}: nothing to promote"),
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

/// Production must not start on development defaults (a generated
/// certificate, plain-HTTP redirects, ...): better down than unsafe.
fn refuse_unsafe_production(config: &Config) -> anyhow::Result<()> {
    let problems = config.production_problems();
    if config.env == Environment::Production && !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("  - {}: {}", p.key, p.problem)).collect();
        bail!("refusing to start in production:\n{}", list.join("\n"));
    }
    Ok(())
}

/// Development mode is the default so that a laptop needs no settings; a
/// service listening beyond loopback on that default was most likely
/// deployed without `APP_ENV=production`.
fn refuse_unchosen_development_exposure(config: &Config) -> anyhow::Result<()> {
    if let Some(addr) = config.unchosen_development_exposure() {
        bail!(
            "refusing to listen on {addr} in development mode, which nobody chose: set APP_ENV=production \
             for a deployment, or APP_ENV=development to run development settings on that address"
        );
    }
    Ok(())
}

fn check_config(config: &Config) -> anyhow::Result<ExitCode> {
    println!("# Effective configuration (secrets redacted)\n{}", toml::to_string_pretty(config)?);
    let problems = config.production_problems();
    if problems.is_empty() {
        println!("# Fit for production: yes");
        return Ok(ExitCode::SUCCESS);
    }
    println!("# Fit for production: no");
    for problem in &problems {
        println!("#   - {}: {}", problem.key, problem.problem);
    }
    Ok(if config.env == Environment::Production { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
