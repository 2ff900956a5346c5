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
//!   message in a bounded queue that one worker empties, retrying with
//!   backoff. A full queue drops the message, counted and logged, and the
//!   request still succeeds.
//! - At most `mail.max_per_address_per_hour` messages go to one address,
//!   whatever the requests (against mail bombing); over it nothing is sent
//!   and the caller's answer does not change.
//!
//! Tokens and message bodies never reach a log.

mod transport;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use lettre::message::{Mailbox, header::ContentType};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use url::Url;

pub use self::transport::Transport;
use crate::{
    auth::unix_millis,
    config::Config,
    db::{Pool, window_counters},
    domain::Email,
};

/// How often a message is tried before it is given up, and the wait before
/// the first retry (doubled for each further one).
const ATTEMPTS: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const CAP_WINDOW: Duration = Duration::from_hours(1);

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

/// Sends messages through the queue (see the module docs).
pub struct Mailer {
    queue: mpsc::Sender<Queued>,
    dropped: Arc<AtomicU64>,
    db: Pool,
    from: Mailbox,
    service: String,
    links: Url,
    per_address_per_hour: u32,
}

struct Queued {
    kind: &'static str,
    message: lettre::Message,
}

impl Mailer {
    /// The mailer of `config`, with its worker started.
    pub fn start(config: &Config, db: Pool) -> anyhow::Result<Self> {
        let mail = &config.mail;
        let transport = Transport::from_config(config)?;
        let (queue, waiting) = mpsc::channel(mail.queue_capacity);
        tokio::spawn(deliver(transport, waiting));
        let public_url = &config.server.public_url;
        Ok(Self {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
            db,
            from: mail.from.parse().context("mail.from is not a mailbox")?,
            service: public_url.host_str().unwrap_or("this service").to_owned(),
            links: mail.link_base_url.clone().unwrap_or_else(|| public_url.clone()),
            per_address_per_hour: mail.max_per_address_per_hour,
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
        let email = match self.build(to, &message) {
            Ok(email) => email,
            Err(err) => {
                tracing::error!(kind, error = format!("{err:#}"), "a message could not be built");
                return Ok(());
            }
        };
        match self.queue.try_send(Queued { kind, message: email }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(kind, dropped, "the mail queue is full: message dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!(kind, "the mail worker stopped: message dropped");
            }
        }
        Ok(())
    }

    /// Messages dropped because the queue was full, since start.
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

    /// The message, with headers set only through lettre's typed builder: a
    /// value cannot smuggle in another header.
    fn build(&self, to: &Email, message: &Message<'_>) -> anyhow::Result<lettre::Message> {
        let (subject, body) = message.render(&self.service, &self.links);
        Ok(lettre::Message::builder()
            .from(self.from.clone())
            .to(to.as_str().parse::<Mailbox>().context("a recipient lettre cannot address")?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)?)
    }
}

/// The worker: delivers queued messages one by one, each tried `ATTEMPTS`
/// times with growing waits; a message given up is logged, without it.
async fn deliver(transport: Transport, mut queue: mpsc::Receiver<Queued>) {
    while let Some(queued) = queue.recv().await {
        let mut wait = FIRST_RETRY;
        for attempt in 1..=ATTEMPTS {
            match transport.deliver(&queued.message).await {
                Ok(()) => break,
                Err(err) if attempt < ATTEMPTS => {
                    tracing::warn!(
                        kind = queued.kind,
                        attempt,
                        error = format!("{err:#}"),
                        "sending mail failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(err) => {
                    tracing::error!(
                        kind = queued.kind,
                        attempts = ATTEMPTS,
                        error = format!("{err:#}"),
                        "sending mail failed; given up"
                    );
                }
            }
        }
    }
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
