//! The audit trail: who did what, when, from where, and whether it worked,
//! for every security-relevant action, in a form nobody can quietly edit.
//!
//! An [`Event`] has one documented shape (see the README). Each goes two
//! ways: a JSON line on the `audit` tracing target, for a log shipper to
//! route apart from application logs; and a row of `audit_events`, which
//! the database keeps append-only and which `chain` links by hashes.
//!
//! Three ways to record, by what the event describes:
//! - a change (roles, disabling, passwords, email, linking):
//!   [`append_in`] the change's own transaction, so that the change and
//!   its record commit together or not at all;
//! - anything else: [`Auditor::record`], a bounded queue that a background
//!   writer drains; no request waits on it, and an overflow is counted and
//!   logged;
//! - floods (denials, rate limits): [`Auditor::record_flood`], one row per
//!   event, source and actor per `audit.flood_window_secs`, with a count,
//!   so that an attacker cannot fill the disk.
//!
//! Requests' context (source address, user agent, request id) is set once
//! per request by the HTTP layer ([`in_context`]) and read by
//! [`Event::new`], so that services need not carry it.

pub mod chain;

use std::{
    collections::HashMap,
    future::Future,
    net::IpAddr,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Deserialize;
use serde_json::{Map, Value};
use time::{OffsetDateTime, format_description::BorrowedFormatItem, macros::format_description};
use tokio::sync::mpsc;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{Principal, Subject},
    config::AuditConfig,
    db::{
        self, Pool, Tx,
        audit::{AuditRow, Filter},
    },
    domain::Page,
};

/// The stored time format: RFC 3339, UTC, microseconds, fixed width, so
/// that text order is time order.
const TIME_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Longest user agent kept, in characters.
const MAX_USER_AGENT_CHARS: usize = 256;

/// Events written to the database in one transaction at most.
const WRITE_BATCH: usize = 100;

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    /// The caller tried and failed (a wrong password, an expired link).
    Failure,
    /// The service refused (no right, over a limit).
    Denied,
}

impl Outcome {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }
}

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// `account`, `subject` (a provider identity without an account here),
    /// `anonymous` or `system` (the command line, background work).
    pub kind: &'static str,
    pub id: Option<String>,
    /// The OAuth client, for provider-issued tokens.
    pub client: Option<String>,
    /// How the actor authenticated (`password`, `oidc`, …).
    pub method: Option<&'static str>,
}

impl Actor {
    #[must_use]
    pub fn anonymous() -> Self {
        Self { kind: "anonymous", id: None, client: None, method: None }
    }

    #[must_use]
    pub fn system() -> Self {
        Self { kind: "system", id: None, client: None, method: None }
    }

    /// An account of this service, by id.
    #[must_use]
    pub fn account(id: Uuid) -> Self {
        Self { kind: "account", id: Some(id.to_string()), client: None, method: None }
    }

    /// The caller behind a verified token.
    #[must_use]
    pub fn principal(principal: &Principal) -> Self {
        let (kind, id) = match &principal.subject {
            Subject::User(id) => ("account", id.to_string()),
            Subject::External(subject) => ("subject", subject.clone()),
        };
        Self { kind, id: Some(id), client: principal.client.clone(), method: Some(principal.method.as_str()) }
    }

    #[must_use]
    pub fn by(self, method: &'static str) -> Self {
        Self { method: Some(method), ..self }
    }
}

/// The request an event happened in: set by the HTTP layer.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub source: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// Runs `work` (a request's handling) with `context` for the events it
/// records.
pub async fn in_context<F: Future>(context: RequestContext, work: F) -> F::Output {
    CONTEXT.scope(context, work).await
}

/// One security event. Never put a password, token, hash, key or code in
/// it: `details` holds small facts (a reason class, a role list, a count).
#[derive(Clone, Debug)]
pub struct Event {
    occurred_at: OffsetDateTime,
    name: &'static str,
    outcome: Outcome,
    actor: Actor,
    context: RequestContext,
    target: Option<(&'static str, String)>,
    details: Map<String, Value>,
    count: i64,
}

impl Event {
    /// An event named `name` (dotted: `auth.login.failed`), now, in the
    /// current request's context, by an anonymous actor until told.
    #[must_use]
    pub fn new(name: &'static str, outcome: Outcome) -> Self {
        let context = CONTEXT.try_with(Clone::clone).unwrap_or_default();
        Self {
            occurred_at: OffsetDateTime::now_utc(),
            name,
            outcome,
            actor: Actor::anonymous(),
            context,
            target: None,
            details: Map::new(),
            count: 1,
        }
    }

    #[must_use]
    pub fn actor(self, actor: Actor) -> Self {
        Self { actor, ..self }
    }

    /// What the event is about: its kind (`route`, …) and id.
    #[must_use]
    pub fn target(self, kind: &'static str, id: String) -> Self {
        Self { target: Some((kind, id)), ..self }
    }

    /// The event is about the account `id`.
    #[must_use]
    pub fn on_account(self, id: Uuid) -> Self {
        self.target("account", id.to_string())
    }

    /// The same event, failed, for `reason`: a class (`credentials`,
    /// `throttled`, …), never the input.
    #[must_use]
    pub fn failed(self, reason: &'static str) -> Self {
        Self { outcome: Outcome::Failure, ..self }.detail("reason", reason)
    }

    #[must_use]
    pub fn detail(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// The event as a row, before it has a place in the chain.
    fn row(&self) -> AuditRow {
        let user_agent = self.context.user_agent.as_deref().map(|agent| {
            agent.char_indices().nth(MAX_USER_AGENT_CHARS).map_or(agent, |(end, _)| &agent[..end]).to_owned()
        });
        AuditRow {
            seq: 0,
            occurred_at: self.occurred_at.format(TIME_FORMAT).unwrap_or_default(),
            name: self.name.to_owned(),
            outcome: self.outcome.as_str().to_owned(),
            actor_kind: self.actor.kind.to_owned(),
            actor_id: self.actor.id.clone(),
            actor_client: self.actor.client.clone(),
            actor_method: self.actor.method.map(str::to_owned),
            source: self.context.source.map(|source| source.to_string()),
            user_agent,
            request_id: self.context.request_id.clone(),
            target_kind: self.target.as_ref().map(|(kind, _)| (*kind).to_owned()),
            target_id: self.target.as_ref().map(|(_, id)| id.clone()),
            details: Value::Object(self.details.clone()).to_string(),
            count: self.count,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// The event's line on the `audit` target.
    fn log(&self) {
        let row = self.row();
        tracing::info!(
            target: "audit",
            event = row.name,
            outcome = row.outcome,
            occurred_at = row.occurred_at,
            actor_kind = row.actor_kind,
            actor_id = row.actor_id,
            actor_client = row.actor_client,
            actor_method = row.actor_method,
            source = row.source,
            user_agent = row.user_agent,
            request_id = row.request_id,
            target_kind = row.target_kind,
            target_id = row.target_id,
            details = row.details,
            count = row.count,
            "audit event"
        );
    }
}

/// An event appended in a transaction: log it once the transaction
/// committed, so that the log never tells of a change that did not happen.
#[must_use = "call `log` once the transaction committed"]
pub struct Audited(Event);

impl Audited {
    pub fn log(self) {
        self.0.log();
    }
}

/// Appends `event` in `tx`, the transaction of the change it records.
pub async fn append_in(tx: &mut Tx<'_>, event: Event) -> Result<Audited, sqlx::Error> {
    db::audit::append(tx, event.row(), chain::hash).await?;
    Ok(Audited(event))
}

/// Appends `event` at once, in a transaction of its own: for the command
/// line, which records rarely and has no queue running.
pub async fn append_now(db: &Pool, event: Event) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let audited = append_in(&mut tx, event).await?;
    tx.commit().await?;
    audited.log();
    Ok(())
}

/// What an administrator asks of the trail; every filter is optional.
#[derive(Debug, Default)]
pub struct Query {
    /// An account id or provider subject.
    pub actor: Option<String>,
    pub event: Option<String>,
    pub outcome: Option<Outcome>,
    /// A target's id (an account id, a route, …).
    pub target: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// Newest first: the events before this `seq`.
    pub before: Option<i64>,
    pub limit: u32,
}

/// The events matching `query`, newest first, a page at a time.
pub async fn query(db: &Pool, query: &Query) -> Result<Page<AuditRow, i64>, sqlx::Error> {
    let format = |time: &OffsetDateTime| time.to_offset(time::UtcOffset::UTC).format(TIME_FORMAT).ok();
    let (since, until) = (query.since.as_ref().and_then(format), query.until.as_ref().and_then(format));
    let filter = Filter {
        actor_id: query.actor.as_deref(),
        name: query.event.as_deref(),
        outcome: query.outcome.map(Outcome::as_str),
        target_id: query.target.as_deref(),
        since: since.as_deref(),
        until: until.as_deref(),
        before: query.before,
    };
    let rows = db::audit::find(db, &filter, query.limit + 1).await?;
    Ok(Page::of(rows, query.limit, |row| row.seq))
}

/// What `prune` removed.
#[derive(Debug, PartialEq, Eq)]
pub struct Pruned {
    pub removed: u64,
    pub upto_seq: Option<i64>,
}

/// Removes the events older than `retention`, leaving the chain verifiable:
/// the head keeps the hash of the last row removed, and an `audit.pruned`
/// event in the chain tells what was removed.
pub async fn prune(db: &Pool, retention: Duration) -> Result<Pruned, sqlx::Error> {
    let cutoff = (OffsetDateTime::now_utc() - retention).format(TIME_FORMAT).unwrap_or_default();
    let mut tx = db.begin().await?;
    db::audit::lock_head(&mut tx).await?;
    let Some((upto, hash)) = db::audit::last_before(&mut tx, &cutoff).await? else {
        return Ok(Pruned { removed: 0, upto_seq: None });
    };
    let removed = db::audit::prune_upto(&mut tx, upto, &hash).await?;
    let event = Event::new("audit.pruned", Outcome::Success)
        .actor(Actor::system())
        .detail("upto_seq", upto)
        .detail("last_removed_hash", hash)
        .detail("removed", removed);
    let audited = append_in(&mut tx, event).await?;
    tx.commit().await?;
    audited.log();
    Ok(Pruned { removed, upto_seq: Some(upto) })
}

/// The bounded, asynchronous way in, and the flood aggregator.
pub struct Auditor {
    queue: mpsc::Sender<Event>,
    /// Events queued and not yet written (or given up on) by the writer.
    pending: std::sync::Arc<AtomicU64>,
    dropped: AtomicU64,
    drop_logged: Mutex<Option<Instant>>,
    floods: Mutex<Floods>,
    max_flood_keys: usize,
}

/// Flood events of the current window, one per event, source and actor,
/// and how many sources each event name has.
#[derive(Default)]
struct Floods {
    events: HashMap<(&'static str, Option<IpAddr>, Option<String>), Event>,
    sources: HashMap<&'static str, usize>,
}

impl Auditor {
    /// Starts the writer that drains the queue into `db`, and the task that
    /// writes each window's floods.
    #[must_use]
    pub fn start(config: &AuditConfig, db: Pool) -> std::sync::Arc<Self> {
        let (queue, events) = mpsc::channel(config.queue_capacity);
        let pending = std::sync::Arc::new(AtomicU64::new(0));
        let auditor = std::sync::Arc::new(Self {
            queue,
            pending: pending.clone(),
            dropped: AtomicU64::new(0),
            drop_logged: Mutex::new(None),
            floods: Mutex::default(),
            max_flood_keys: config.max_flood_sources,
        });
        tokio::spawn(write(events, db, pending));
        let window = config.flood_window;
        let weak = std::sync::Arc::downgrade(&auditor);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(window);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(auditor) = weak.upgrade() else { return };
                auditor.flush_floods();
            }
        });
        auditor
    }

    /// Logs `event` and queues it for the database; never waits. A full
    /// queue drops the event, counts it and says so once a minute.
    pub fn record(&self, event: Event) {
        event.log();
        self.enqueue(event);
    }

    fn enqueue(&self, event: Event) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        if self.queue.try_send(event).is_ok() {
            return;
        }
        self.pending.fetch_sub(1, Ordering::Relaxed);
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let mut logged = self.drop_logged.lock().unwrap_or_else(PoisonError::into_inner);
        if logged.is_none_or(|at| at.elapsed() >= Duration::from_mins(1)) {
            *logged = Some(Instant::now());
            tracing::error!(dropped, "audit queue full: events dropped (audit.queue_capacity)");
        }
    }

    /// Events dropped so far because the queue was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Counts `event` into this window's row for its name, source and actor;
    /// the row is logged and written when the window ends. Past
    /// `audit.max_flood_sources` of one name, the rest share one row.
    pub fn record_flood(&self, event: Event) {
        let mut floods = self.floods.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (event.name, event.context.source, event.actor.id.clone());
        if let Some(kept) = floods.events.get_mut(&key) {
            kept.count += 1;
            return;
        }
        let sources = floods.sources.entry(event.name).or_default();
        let event = if *sources >= self.max_flood_keys {
            Event { context: RequestContext::default(), actor: Actor::anonymous(), target: None, ..event }
                .detail("sources", "many")
        } else {
            *sources += 1;
            event
        };
        let key = (event.name, event.context.source, event.actor.id.clone());
        floods.events.entry(key).and_modify(|kept| kept.count += 1).or_insert(event);
    }

    /// Queues this window's flood rows, then waits up to `within` for the
    /// writer to have written every queued event: at shutdown, so that the
    /// events of the last moments are not lost with the process. `false`
    /// when the time ran out first.
    pub async fn flush(&self, within: Duration) -> bool {
        self.flush_floods();
        let deadline = Instant::now() + within;
        while self.pending.load(Ordering::Relaxed) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Writes this window's flood rows (the flood task calls it at the end
    /// of each window).
    pub fn flush_floods(&self) {
        let floods = std::mem::take(&mut *self.floods.lock().unwrap_or_else(PoisonError::into_inner));
        for event in floods.events.into_values() {
            self.record(event);
        }
    }
}

/// Drains the queue into the database, a batch per transaction, counting
/// each batch off `pending` once it is written or given up on.
async fn write(mut events: mpsc::Receiver<Event>, db: Pool, pending: std::sync::Arc<AtomicU64>) {
    while let Some(first) = events.recv().await {
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH {
            match events.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        let written = async {
            let mut tx = db.begin().await?;
            for event in &batch {
                db::audit::append(&mut tx, event.row(), chain::hash).await?;
            }
            tx.commit().await
        };
        if let Err(err) = written.await {
            tracing::error!(lost = batch.len(), error = %err, "audit events could not be written");
        }
        pending.fetch_sub(u64::try_from(batch.len()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}
