//! Mail: the messages this service sends, and how they leave it.
//!
//! - `Message`: each kind of message, rendered from the plain-text templates
//!   in `src/mail/templates/` (the first line is the subject). Links are
//!   built from configuration (`mail.link_base_url`), never from a request's
//!   `Host` header, so a reset link cannot be pointed at someone else's
//!   site; the token travels in the link's fragment, which browsers never
//!   send to a server or a `Referer`.
//! - Transports (`transport`): SMTP over TLS, and, for development only, an
//!   outbox directory of `.eml` files, so the quickstart needs no mail server.
//! - `Mailer::send` never makes a request wait on a mail server: it puts the
//!   message in the outbox table (`db::mail_outbox`), sealed because it
//!   carries one-time links, and a worker delivers it, retrying with
//!   backoff. The queue is a table so that a message survives the process
//!   stopping or crashing: the next start (of any instance) delivers it. At
//!   least once: a message being delivered when the process dies is sent
//!   again when its lease ends. A full outbox (`mail.queue_capacity`) drops
//!   the message, counted and logged, and the request still succeeds.
//! - At most `mail.max_per_address_per_hour` messages go to one address,
//!   whatever the requests (against mail bombing); over it nothing is sent
//!   and the caller's answer does not change.
//!
//! Tokens and message bodies never reach a log.

mod transport;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use lettre::{
    Address,
    address::Envelope,
    message::{Mailbox, header::ContentType},
};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, oneshot};
use url::Url;
use uuid::Uuid;

pub use self::transport::Transport;
use crate::{
    auth::unix_millis,
    config::Config,
    db::{self, Pool, mail_outbox::Leased, window_counters},
    domain::Email,
    encryption::{self, DataKeys, Field},
};

/// How often a message is tried before it is given up, and the wait before
/// the first retry (doubled for each further one).
const ATTEMPTS: i32 = 4;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const CAP_WINDOW: Duration = Duration::from_hours(1);
/// How often an idle worker looks for due messages (retries, and messages
/// other instances queued or left behind); its own arrive at once.
const POLL: Duration = Duration::from_secs(1);
/// How long a worker holds a message beyond the SMTP timeout before another
/// may take it.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
const OUTBOX: Field = Field { table: "mail_outbox", column: "message" };

/// A message this service sends. Tokens are only ever put into links.
#[derive(Clone, Copy, Debug)]
pub enum Message<'a> {
    /// Confirms that the holder of an address wants it on an account.
    VerifyEmail {
        token: &'a str,
    },
    /// To the owner of an address someone tried to register again.
    RegistrationNotice,
    PasswordReset {
        token: &'a str,
    },
    PasswordChanged,
    /// To the old address, when a change of address was asked for.
    EmailChangeRequested,
    /// To an address that has an account, which someone asked to move
    /// another account to.
    EmailChangeNotice,
}

impl Message<'_> {
    /// A name for logs (never the content).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::VerifyEmail { .. } => "verify_email",
            Self::RegistrationNotice => "registration_notice",
            Self::PasswordReset { .. } => "password_reset",
            Self::PasswordChanged => "password_changed",
            Self::EmailChangeRequested => "email_change_requested",
            Self::EmailChangeNotice => "email_change_notice",
        }
    }

    fn template(&self) -> &'static str {
        match self {
            Self::VerifyEmail { .. } => include_str!("templates/verify_email.txt"),
            Self::RegistrationNotice => include_str!("templates/registration_notice.txt"),
            Self::PasswordReset { .. } => include_str!("templates/password_reset.txt"),
            Self::PasswordChanged => include_str!("templates/password_changed.txt"),
            Self::EmailChangeRequested => include_str!("templates/email_change_requested.txt"),
            Self::EmailChangeNotice => include_str!("templates/email_change_notice.txt"),
        }
    }

    /// The page of the front end that completes the flow, and its token.
    fn link(&self, base: &Url) -> Option<String> {
        let (page, token) = match self {
            Self::VerifyEmail { token } => ("verify-email", token),
            Self::PasswordReset { token } => ("reset-password", token),
            _ => return None,
        };
        Some(format!("{}/{page}#token={token}", base.as_str().trim_end_matches('/')))
    }

    /// The subject and the plain-text body.
    fn render(&self, service: &str, links: &Url) -> (String, String) {
        let text = self.template().replace("{service}", service);
        let text = match self.link(links) {
            Some(link) => text.replace("{link}", &link),
            None => text,
        };
        let (subject, body) = text.split_once('\n').unwrap_or((&text, ""));
        (subject.to_owned(), body.trim_start().to_owned())
    }
}

/// Sends messages through the outbox (see the module docs).
pub struct Mailer {
    db: Pool,
    keys: Arc<DataKeys>,
    capacity: usize,
    dropped: AtomicU64,
    /// Tells this instance's worker that a message is waiting.
    queued: Arc<Notify>,
    /// Whether the last delivery attempt failed, for readiness.
    failing: Arc<AtomicBool>,
    from: Mailbox,
    service: String,
    links: Url,
    per_address_per_hour: u32,
    /// Dropped with the mailer, which stops the worker.
    _worker: oneshot::Sender<()>,
}

impl Mailer {
    /// The mailer of `config`, with its worker started.
    pub fn start(config: &Config, db: Pool, keys: Arc<DataKeys>) -> anyhow::Result<Self> {
        let mail = &config.mail;
        let (worker, stopped) = oneshot::channel();
        let queued = Arc::new(Notify::new());
        let failing = Arc::new(AtomicBool::new(false));
        let from: Mailbox = mail.from.parse().context("mail.from is not a mailbox")?;
        tokio::spawn(
            Worker {
                transport: Transport::from_config(config)?,
                db: db.clone(),
                keys: keys.clone(),
                sender: from.email.clone(),
                lease: mail.smtp.timeout + LEASE_MARGIN,
                queued: queued.clone(),
                failing: failing.clone(),
            }
            .run(stopped),
        );
        let public_url = &config.server.public_url;
        Ok(Self {
            db,
            keys,
            capacity: mail.queue_capacity,
            dropped: AtomicU64::new(0),
            queued,
            failing,
            from,
            service: public_url.host_str().unwrap_or("this service").to_owned(),
            links: mail.link_base_url.clone().unwrap_or_else(|| public_url.clone()),
            per_address_per_hour: mail.max_per_address_per_hour,
            _worker: worker,
        })
    }

    /// Queues `message` for `to`, unless the address had its share of
    /// messages this hour. Never waits for delivery.
    pub async fn send(&self, to: &Email, message: Message<'_>) -> Result<(), sqlx::Error> {
        let kind = message.kind();
        if !self.within_cap(to).await? {
            tracing::warn!(kind, "an address reached its hourly share of messages: not sent");
            return Ok(());
        }
        let id = Uuid::now_v7();
        let sealed = match self.build(to, &message) {
            Ok(email) => self.keys.seal(OUTBOX, id.as_bytes(), &email).map_err(anyhow::Error::from),
            Err(err) => Err(err),
        };
        let sealed = match sealed {
            Ok(sealed) => sealed,
            Err(err) => {
                tracing::error!(kind, error = format!("{err:#}"), "a message could not be built");
                return Ok(());
            }
        };
        if db::mail_outbox::push(&self.db, id, kind, &sealed, unix_millis(), self.capacity).await? {
            self.queued.notify_one();
        } else {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(kind, dropped, "the mail outbox is full: message dropped");
        }
        Ok(())
    }

    /// Whether the last delivery attempt failed: the mail server is down or
    /// refuses, and messages wait in the outbox meanwhile.
    #[must_use]
    pub fn delivery_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Messages dropped because the outbox was full, since start.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Reserves one message to `to` in its hour; the address is keyed by
    /// its hash, so the counters name no one.
    async fn within_cap(&self, to: &Email) -> Result<bool, sqlx::Error> {
        let key = format!("mail:{:x}", Sha256::digest(to.as_str().as_bytes()));
        let window = i64::try_from(CAP_WINDOW.as_millis()).unwrap_or(i64::MAX);
        window_counters::reserve(&self.db, &key, self.per_address_per_hour, unix_millis(), window).await
    }

    /// The recipient and the formatted message, one line apart (what the
    /// outbox stores, sealed), with headers set only through lettre's typed
    /// builder: a value cannot smuggle in another header.
    fn build(&self, to: &Email, message: &Message<'_>) -> anyhow::Result<String> {
        let (subject, body) = message.render(&self.service, &self.links);
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to.as_str().parse::<Mailbox>().context("a recipient lettre cannot address")?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)?;
        let formatted = String::from_utf8(email.formatted()).context("a message that is not UTF-8")?;
        Ok(format!("{}\n{formatted}", to.as_str()))
    }
}

/// Delivers the outbox: the oldest due message first, each tried `ATTEMPTS`
/// times with growing waits between; a message given up is logged, without
/// its content.
struct Worker {
    transport: Transport,
    db: Pool,
    keys: Arc<DataKeys>,
    sender: Address,
    lease: Duration,
    queued: Arc<Notify>,
    failing: Arc<AtomicBool>,
}

impl Worker {
    /// Until the mailer is dropped or the pool closed.
    async fn run(self, mut stopped: oneshot::Receiver<()>) {
        let lease = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        while !self.db.is_closed() {
            let now = unix_millis();
            let next = match db::mail_outbox::any_due(&self.db, now).await {
                Ok(true) => db::mail_outbox::lease_next(&self.db, now, now.saturating_add(lease)).await,
                Ok(false) => Ok(None),
                Err(err) => Err(err),
            };
            match next {
                Ok(Some(leased)) => {
                    if let Err(err) = self.deliver(leased).await {
                        tracing::error!(error = format!("{err:#}"), "the mail outbox could not be updated");
                    }
                    continue;
                }
                Ok(None) => {}
                Err(_) if self.db.is_closed() => return,
                Err(err) => tracing::error!(error = format!("{err:#}"), "the mail outbox could not be read"),
            }
            tokio::select! {
                _ = &mut stopped => return,
                () = self.queued.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn deliver(&self, leased: Leased) -> Result<(), sqlx::Error> {
        let kind = leased.kind.as_str();
        let delivered = async {
            let opened = self.keys.open(OUTBOX, leased.id.as_bytes(), &leased.message)?;
            let (to, formatted) = opened.split_once('\n').context("not an outbox message")?;
            let envelope = Envelope::new(Some(self.sender.clone()), vec![to.parse()?])?;
            self.transport.deliver(&envelope, formatted.as_bytes()).await
        }
        .await;
        self.failing.store(delivered.is_err(), Ordering::Relaxed);
        match delivered {
            Ok(()) => db::mail_outbox::remove(&self.db, leased.id).await,
            Err(err) if leased.attempts < ATTEMPTS => {
                tracing::warn!(
                    kind,
                    attempt = leased.attempts,
                    error = format!("{err:#}"),
                    "sending mail failed; retrying"
                );
                let wait = FIRST_RETRY * 2u32.pow(leased.attempts.unsigned_abs().saturating_sub(1));
                let due = unix_millis().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                db::mail_outbox::retry_at(&self.db, leased.id, due).await
            }
            Err(err) => {
                tracing::error!(
                    kind,
                    attempts = leased.attempts,
                    error = format!("{err:#}"),
                    "sending mail failed; given up"
                );
                db::mail_outbox::remove(&self.db, leased.id).await
            }
        }
    }
}

/// Re-encrypts the waiting messages not yet under the current key, `batch`
/// at a time; returns how many (see `encryption::reseal_all`).
pub async fn reseal_outbox(db: &Pool, keys: &DataKeys, batch: u32) -> anyhow::Result<u64> {
    encryption::reseal_all(
        keys,
        OUTBOX,
        batch,
        async |prefix, limit| Ok(db::mail_outbox::sealed_otherwise(db, prefix, limit).await?),
        async |id, read, message| Ok(db::mail_outbox::reseal(db, *id, read, message).await?),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_links_from_configuration_with_the_token_in_the_fragment() {
        let base = Url::parse("https://app.example.com").expect("url");
        let (subject, body) = Message::PasswordReset { token: "t0k3n" }.render("api.example.com", &base);
        assert_eq!(subject, "Reset your password");
        assert!(body.contains("https://app.example.com/reset-password#token=t0k3n"), "{body}");
        assert!(body.contains("api.example.com") && !body.contains('{'), "{body}");
        let (_, notice) = Message::RegistrationNotice.render("api.example.com", &base);
        assert!(!notice.contains("https://"), "a notice carries no link: {notice}");
    }
}
