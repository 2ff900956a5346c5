//! Logs: `tracing` events as JSON lines in production (one object per line,
//! for a log shipper) and readable lines in development.
//!
//! What never reaches a log: request headers (so no `Authorization`, `Cookie`
//! or `Set-Cookie`), query strings (OAuth codes travel there), request bodies,
//! and configuration secrets. The request span (see `http::trace`) records
//! the matched route template, not the raw URI.
//!
//! Lines are written to stderr by a thread of their own: a request formats
//! its line and hands it over, and never waits for the write (unless the
//! writer falls a whole buffer behind, when requests wait rather than lose
//! lines: audit events travel this way too).

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{EnvFilter, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{Config, LogFormat};

/// Installs the global subscriber; call once, before anything logs, and
/// keep the guard until the end: dropping it writes what is still queued.
pub fn init(config: &Config) -> anyhow::Result<WorkerGuard> {
    let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(std::io::stderr());
    subscriber(config, writer).try_init()?;
    Ok(guard)
}

/// The subscriber `init` installs, writing to `writer`; tests capture logs with it.
pub fn subscriber<W>(config: &Config, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // The filter was validated when the configuration loaded.
    let filter = EnvFilter::try_new(&config.log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (json, pretty) = match config.log_format() {
        LogFormat::Json => (
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            ),
            None,
        ),
        LogFormat::Pretty => (None, Some(tracing_subscriber::fmt::layer().with_writer(writer))),
    };
    tracing_subscriber::registry().with(filter).with(json).with(pretty)
}
