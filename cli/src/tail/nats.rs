//! `tail --nats`: the last events of the JetStream stream the NATS writers publish to, then
//! every new one, read with consumers that acknowledge nothing and leave nothing behind
//! (the stream's other readers, `detect --nats` among them, are not disturbed).
//!
//! The first page is read backwards in windows of stream sequences that grow until it holds
//! `-n` events that pass the filter (or the stream's start is reached); following is an
//! ordered consumer from the sequence after the last one at start.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, stream::Stream};
use futures_util::StreamExt as _;

use super::print::{LastEntries, Printer};
use crate::nats_client::{self, Auth, DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX};
use crate::Failure;

/// Connecting, and each JetStream request.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Messages asked for at once.
const BATCH: usize = 256;
/// The first window read backwards, in stream sequences (grown fourfold each time).
const FIRST_WINDOW: u64 = 256;

/// Where to read: the `--nats` flags.
#[derive(Debug)]
pub struct Source {
    /// Servers of one cluster.
    pub servers: Vec<String>,
    /// The stream [default: OAUTH_AUDIT].
    pub stream: Option<String>,
    /// Events are on `<prefix>.<kind>` [default: oauth.audit].
    pub subject_prefix: Option<String>,
    /// A .creds file.
    pub creds: Option<PathBuf>,
    /// A user (the password from OAUTH_AUDIT_NATS_PASSWORD).
    pub user: Option<String>,
    /// Certificate authorities for tls:// servers; given, they make TLS required.
    pub ca: Option<PathBuf>,
}

/// Shows the last `n` events of the stream and, with `follow`, every new one until the
/// process is stopped.
pub fn run(source: Source, n: usize, follow: bool, printer: &mut Printer) -> Result<(), Failure> {
    let servers = nats_client::servers(&source.servers)?;
    let auth = Auth::from_env(source.creds.as_deref(), source.user.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the Tokio runtime: {e}")))?;
    let result = runtime.block_on(async {
        let client = nats_client::connect(
            servers,
            &auth,
            source.ca.as_deref(),
            "oauth-audit-tail",
            TIMEOUT,
        )
        .await?;
        let context = jetstream::ContextBuilder::new()
            .timeout(TIMEOUT)
            .build(client);
        let name = source.stream.as_deref().unwrap_or(DEFAULT_STREAM);
        let prefix = source
            .subject_prefix
            .as_deref()
            .unwrap_or(DEFAULT_SUBJECT_PREFIX);
        let filter = match printer.filter().single_kind() {
            Some(kind) => format!("{prefix}.{kind}"),
            None => format!("{prefix}.>"),
        };
        let mut stream = context.get_stream(name).await.map_err(|e| {
            Failure::Runtime(format!(
                "JetStream stream {name:?}: {e} (a NATS writer creates it when it first sends; \
                 check --stream)"
            ))
        })?;
        let state = stream
            .info()
            .await
            .map_err(|e| Failure::Runtime(format!("JetStream stream {name:?}: {e}")))?
            .state
            .clone();
        let last = state.last_sequence;
        let page = first_page(
            &stream,
            name,
            &filter,
            state.first_sequence,
            last,
            n,
            printer,
        )
        .await?;
        for entry in page.into_entries() {
            printer.show(&entry)?;
        }
        printer.flush()?;
        if follow {
            tail(&stream, name, &filter, last + 1, printer).await?;
        }
        Ok::<(), Stopped>(())
    });
    match result {
        Ok(()) => Ok(()),
        Err(Stopped::Failure(failure)) => Err(failure),
        Err(Stopped::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(Stopped::Write(e)) => Err(Failure::Runtime(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

/// Why reading stopped.
enum Stopped {
    Failure(Failure),
    Write(std::io::Error),
}

impl From<Failure> for Stopped {
    fn from(failure: Failure) -> Self {
        Stopped::Failure(failure)
    }
}

impl From<std::io::Error> for Stopped {
    fn from(error: std::io::Error) -> Self {
        Stopped::Write(error)
    }
}

/// The last `n` events that pass the filter, among sequences `first..=last`.
async fn first_page(
    stream: &Stream,
    name: &str,
    filter: &str,
    first: u64,
    last: u64,
    n: usize,
    printer: &Printer,
) -> Result<LastEntries, Stopped> {
    let mut page = LastEntries::new(n);
    if n == 0 || last == 0 || last < first {
        return Ok(page);
    }
    let mut end = last;
    let mut window = FIRST_WINDOW.max(n as u64);
    loop {
        let start = end.saturating_sub(window - 1).max(first);
        let mut older = LastEntries::new(page.wanted());
        read_range(stream, name, filter, start, end, printer, &mut older).await?;
        page.prepend(older);
        if page.wanted() == 0 || start <= first {
            return Ok(page);
        }
        end = start - 1;
        window = window.saturating_mul(4);
    }
}

/// Reads the messages of sequences `start..=end` on `filter` into `entries`.
async fn read_range(
    stream: &Stream,
    name: &str,
    filter: &str,
    start: u64,
    end: u64,
    printer: &Printer,
    entries: &mut LastEntries,
) -> Result<(), Stopped> {
    let consumer = stream
        .create_consumer(pull::Config {
            description: Some("oauth-audit tail".into()),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ack_policy: AckPolicy::None,
            filter_subject: filter.to_owned(),
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(|e| Failure::Runtime(format!("cannot read stream {name:?}: {e}")))?;
    let consumer_name = consumer.cached_info().name.clone();
    'read: loop {
        let mut batch = consumer
            .fetch()
            .max_messages(BATCH)
            .messages()
            .await
            .map_err(|e| Failure::Runtime(format!("cannot read stream {name:?}: {e}")))?;
        let mut any = false;
        while let Some(next) = batch.next().await {
            let message =
                next.map_err(|e| Failure::Runtime(format!("cannot read stream {name:?}: {e}")))?;
            any = true;
            let sequence = message.info().map_or(u64::MAX, |info| info.stream_sequence);
            if sequence > end {
                break 'read;
            }
            let subject = message.subject.as_str();
            if let Some(entry) = printer.judge(&message.payload, || {
                format!("stream {name} message {sequence} ({subject})")
            }) {
                entries.push(entry);
            }
        }
        if !any {
            break;
        }
    }
    if let Err(e) = stream.delete_consumer(&consumer_name).await {
        tracing::debug!("the reading consumer stays until it expires: {e}");
    }
    Ok(())
}

/// Shows every message from sequence `start` on, as it arrives.
async fn tail(
    stream: &Stream,
    name: &str,
    filter: &str,
    start: u64,
    printer: &mut Printer,
) -> Result<(), Stopped> {
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            description: Some("oauth-audit tail".into()),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            filter_subject: filter.to_owned(),
            ..Default::default()
        })
        .await
        .map_err(|e| Failure::Runtime(format!("cannot follow stream {name:?}: {e}")))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| Failure::Runtime(format!("cannot follow stream {name:?}: {e}")))?;
    while let Some(next) = messages.next().await {
        let message = match next {
            Ok(message) => message,
            Err(e) => {
                // The ordered consumer recreates itself where it was.
                tracing::warn!("following stream {name:?}: {e}");
                continue;
            }
        };
        let sequence = message.info().map_or(0, |info| info.stream_sequence);
        let subject = message.subject.as_str();
        printer.line(&message.payload, || {
            format!("stream {name} message {sequence} ({subject})")
        })?;
        printer.flush()?;
    }
    Err(Failure::Runtime(format!("stream {name:?}: the subscription ended")).into())
}
