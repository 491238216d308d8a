//! `oauth-audit detect --nats`: one detector for the whole fleet, on the JetStream stream
//! that every service's NATS writer publishes to (`docs/detection.md`, "Fleet-wide
//! detection on NATS").
//!
//! - A durable pull consumer reads `<prefix>.>`; an event is acknowledged once the detector
//!   has looked at it and every alert it raised is stored in the stream and queued for the
//!   writers (at least once). A restart resumes after the last acknowledged event.
//! - Windows live in memory: at start, the last `--replay` of the stream up to where the
//!   consumer stopped is read again, alerts discarded, so that windows and cooldowns are
//!   what they were.
//! - Alerts go back to the stream as `SecurityAlert` events on `<prefix>.SecurityAlert`,
//!   their `Nats-Msg-Id` the alert id, which is derived from the rule and the event that
//!   raised it: the same alert raised again after a crash is dropped by the stream. The
//!   detector skips `SecurityAlert` events, its own included.
//! - Events are deduplicated by id (`--dedupe-ids`); a message that is not a JSON event is
//!   reported, terminated (never redelivered) and skipped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, AckKind};
use async_nats::ServerAddr;
use futures_util::StreamExt as _;
use oauth_audit::config::AuditorConfig;
use oauth_audit::delivery::EncodedEvent;
use oauth_audit::detect::Detector;
use oauth_audit::event::{AuditEvent, EventKind, ServiceInfo};
use oauth_audit::writer::Auditor;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use uuid::Uuid;

use super::recent::RecentIds;
use super::NatsArgs;
use crate::config::FileConfig;
use crate::nats_client::{self, Auth, DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX};
use crate::Failure;

/// Messages asked for in one pull.
const BATCH: usize = 256;
/// How long one pull waits for messages; also how late a stop or `--until-idle` is noticed.
const PULL_EXPIRES: Duration = Duration::from_secs(1);
/// Connecting, JetStream requests, and one attempt to publish an alert.
const TIMEOUT: Duration = Duration::from_secs(5);
/// A message not acknowledged within this is delivered again.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// The longest pause between attempts to publish an alert.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The service alerts name when the configuration names none.
const SERVICE_NAME: &str = "oauth-audit-detect";

/// The durable consumer's name by default.
const DEFAULT_DURABLE: &str = "oauth-audit-detect";
/// Event ids remembered by default.
const DEFAULT_DEDUPE_IDS: usize = 100_000;

/// The flags, defaults applied.
struct Settings {
    servers: Vec<ServerAddr>,
    auth: Auth,
    stream: String,
    subject_prefix: String,
    durable: String,
    dedupe_ids: usize,
    replay: Option<Duration>,
    until_idle: Option<Duration>,
    ca: Option<PathBuf>,
}

/// Runs the fleet detector until SIGTERM or Ctrl-C (or `--until-idle`).
pub fn run(args: NatsArgs, detector: Detector, file: Option<FileConfig>) -> Result<(), Failure> {
    let settings = Settings {
        servers: nats_client::servers(&args.nats)?,
        auth: Auth::from_env(args.nats_creds.as_deref(), args.nats_user.as_deref())?,
        stream: args.stream.unwrap_or_else(|| DEFAULT_STREAM.to_owned()),
        subject_prefix: args
            .subject_prefix
            .unwrap_or_else(|| DEFAULT_SUBJECT_PREFIX.to_owned()),
        durable: args.durable.unwrap_or_else(|| DEFAULT_DURABLE.to_owned()),
        dedupe_ids: args.dedupe_ids.unwrap_or(DEFAULT_DEDUPE_IDS),
        replay: args.replay.map(|d| d.0),
        until_idle: args.until_idle.map(|d| d.0),
        ca: args.nats_ca,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the Tokio runtime: {e}")))?;
    runtime.block_on(consume(settings, detector, file))
}

/// What was seen, for the summary.
#[derive(Debug, Default)]
struct Counts {
    /// Events the detector looked at since the start (the replay aside).
    events: u64,
    alerts: BTreeMap<String, u64>,
    duplicates: u64,
    not_json: u64,
    /// Events read again at start to rebuild the windows.
    replayed: u64,
}

/// What becomes of a message.
enum Handled {
    /// Done with: acknowledge.
    Done,
    /// Never usable: terminate, so that it is not delivered again.
    Unusable,
    /// Stopped before its alerts were stored: deliver it again (to the next run).
    Stopped,
}

/// The detector and where its alerts go.
struct Fleet {
    jetstream: jetstream::Context,
    stream: String,
    alert_subject: String,
    detector: Detector,
    recent: RecentIds,
    auditor: Auditor,
    stop: watch::Receiver<bool>,
    counts: Counts,
}

async fn consume(
    args: Settings,
    detector: Detector,
    file: Option<FileConfig>,
) -> Result<(), Failure> {
    let (stopping, stop) = watch::channel(false);
    tokio::spawn(async move {
        crate::setup::shutdown_signal().await;
        let _ = stopping.send(true);
    });

    let client = nats_client::connect(
        args.servers.clone(),
        &args.auth,
        args.ca.as_deref(),
        "oauth-audit-detect",
        TIMEOUT,
    )
    .await?;
    let jetstream = jetstream::ContextBuilder::new()
        .timeout(TIMEOUT)
        .build(client.clone());
    let stream = jetstream.get_stream(&args.stream).await.map_err(|e| {
        Failure::Runtime(format!(
            "JetStream stream {:?}: {e} (a NATS writer creates it when it first sends; \
             check --stream)",
            args.stream
        ))
    })?;
    let filter = format!("{}.>", args.subject_prefix);
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &args.durable,
            pull::Config {
                durable_name: Some(args.durable.clone()),
                description: Some("oauth-audit detect --nats".into()),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                filter_subject: filter.clone(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| {
            Failure::Runtime(format!(
                "cannot create or find the durable consumer {:?} on stream {:?}: {e}",
                args.durable, args.stream
            ))
        })?;
    let ack_floor = consumer
        .info()
        .await
        .map_err(|e| Failure::Runtime(format!("consumer {:?}: {e}", args.durable)))?
        .ack_floor
        .stream_sequence;

    let file = file.unwrap_or_default();
    let mut service = ServiceInfo::new(
        file.service_name
            .clone()
            .unwrap_or_else(|| SERVICE_NAME.to_owned()),
    );
    service.instance = file.service_instance.clone();
    let detector = detector.service(service);
    let replay = args.replay.unwrap_or_else(|| longest_window(&detector));
    let auditor = alert_writers(&file).await?;
    let mut fleet = Fleet {
        jetstream,
        stream: args.stream.clone(),
        alert_subject: format!(
            "{}.{}",
            args.subject_prefix,
            EventKind::SecurityAlert.as_str()
        ),
        detector,
        recent: RecentIds::new(args.dedupe_ids),
        auditor,
        stop,
        counts: Counts::default(),
    };

    if ack_floor > 0 && !replay.is_zero() {
        fleet.replay(&stream, &filter, replay, ack_floor).await;
    }
    tracing::info!(
        stream = %args.stream,
        consumer = %args.durable,
        after = ack_floor,
        "detecting on NATS: consuming the stream after sequence {ack_floor}"
    );
    let until_idle = args.until_idle;
    let mut last_message = Instant::now();
    loop {
        if fleet.stopped() || until_idle.is_some_and(|idle| last_message.elapsed() >= idle) {
            break;
        }
        let pulled = consumer
            .batch()
            .max_messages(BATCH)
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        let mut batch = match pulled {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!("cannot pull from consumer {:?}: {e}", args.durable);
                fleet.pause(Duration::from_secs(1)).await;
                continue;
            }
        };
        // A pull ends within PULL_EXPIRES: after a stop, what it still brings goes back.
        while let Some(next) = batch.next().await {
            let message = match next {
                Ok(message) => message,
                Err(e) => {
                    tracing::warn!("pulling from consumer {:?}: {e}", args.durable);
                    break;
                }
            };
            last_message = Instant::now();
            let handled = if fleet.stopped() {
                Handled::Stopped
            } else {
                let sequence = message.info().map_or(0, |info| info.stream_sequence);
                fleet
                    .handle(message.subject.as_str(), &message.payload, sequence, true)
                    .await
            };
            let acked = match handled {
                Handled::Done => message.ack().await,
                Handled::Unusable => message.ack_with(AckKind::Term).await,
                Handled::Stopped => message.ack_with(AckKind::Nak(None)).await,
            };
            if let Err(e) = acked {
                // Delivered again after ACK_WAIT, and then skipped as a duplicate.
                tracing::warn!("cannot acknowledge a message: {e}");
            }
        }
    }
    if let Err(e) = client.flush().await {
        tracing::warn!("cannot send the last acknowledgements: {e}");
    }
    fleet.auditor.shutdown().await;
    fleet.summary(&args.durable);
    Ok(())
}

/// The writers of the configuration, for the alerts only (`detect`, `geoip` and `chain` stay
/// with the proxy); JSON lines on standard output without any.
async fn alert_writers(file: &FileConfig) -> Result<Auditor, Failure> {
    let config = AuditorConfig {
        service_name: Some(
            file.service_name
                .clone()
                .unwrap_or_else(|| SERVICE_NAME.to_owned()),
        ),
        service_instance: file.service_instance.clone(),
        queue: file.queue,
        writers: file.writers.iter().map(|w| w.get_ref().clone()).collect(),
        chain: None,
        geoip: None,
        detect: None,
    };
    config
        .build()
        .await
        .map_err(|e| Failure::Config(e.to_string()))
}

/// The furthest back any rule looks: its timespan, or its cooldown if longer
/// (`revoked_token_reuse` remembers 15 minutes).
fn longest_window(detector: &Detector) -> Duration {
    let revocation = if detector.revocation_rule() {
        Duration::from_secs(15 * 60)
    } else {
        Duration::ZERO
    };
    detector
        .rules()
        .iter()
        .map(|rule| rule.timespan.max(rule.cooldown))
        .fold(revocation, Duration::max)
}

impl Fleet {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits `pause`; whether a stop came meanwhile.
    async fn pause(&mut self, pause: Duration) -> bool {
        tokio::select! {
            _ = self.stop.wait_for(|stop| *stop) => true,
            () = tokio::time::sleep(pause) => false,
        }
    }

    /// Reads the stream again from `back` ago up to `ack_floor`, where the consumer stopped,
    /// so that windows and cooldowns are what they were; the alerts those events raise were
    /// raised before, and are discarded. Best effort: on an error, the rest is skipped.
    async fn replay(
        &mut self,
        stream: &jetstream::stream::Stream,
        filter: &str,
        back: Duration,
        ack_floor: u64,
    ) {
        let since = SystemTime::now()
            .checked_sub(back)
            .unwrap_or(UNIX_EPOCH)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let Ok(start_time) = async_nats::datetime::from_nanos(since.as_nanos() as i128) else {
            return;
        };
        let created = stream
            .create_consumer(pull::Config {
                description: Some("oauth-audit detect --nats: replay at start".into()),
                deliver_policy: DeliverPolicy::ByStartTime { start_time },
                ack_policy: AckPolicy::None,
                filter_subject: filter.to_owned(),
                inactive_threshold: Duration::from_secs(60),
                ..Default::default()
            })
            .await;
        let consumer = match created {
            Ok(consumer) => consumer,
            Err(e) => {
                tracing::warn!("cannot read the stream again to rebuild the windows: {e}");
                return;
            }
        };
        let name = consumer.cached_info().name.clone();
        let started = Instant::now();
        'replay: while !self.stopped() {
            let mut batch = match consumer.fetch().max_messages(BATCH).messages().await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!("reading the stream again: {e}");
                    break;
                }
            };
            let mut any = false;
            while let Some(next) = batch.next().await {
                let message = match next {
                    Ok(message) => message,
                    Err(e) => {
                        tracing::warn!("reading the stream again: {e}");
                        break 'replay;
                    }
                };
                any = true;
                let sequence = message.info().map_or(u64::MAX, |info| info.stream_sequence);
                if sequence > ack_floor {
                    break 'replay;
                }
                self.handle(message.subject.as_str(), &message.payload, sequence, false)
                    .await;
            }
            if !any {
                break;
            }
        }
        if let Err(e) = stream.delete_consumer(&name).await {
            tracing::debug!("the replay consumer stays until it expires: {e}");
        }
        tracing::info!(
            events = self.counts.replayed,
            "read the last {back:?} of the stream again to rebuild the windows in {:?}",
            started.elapsed()
        );
    }

    /// One message: skipped (an alert, a duplicate, not JSON) or looked at by the detector;
    /// `live`, the alerts it raises are published and handed to the writers.
    async fn handle(
        &mut self,
        subject: &str,
        payload: &[u8],
        sequence: u64,
        live: bool,
    ) -> Handled {
        if subject == self.alert_subject {
            return Handled::Done;
        }
        let event = match serde_json::from_slice::<Value>(payload) {
            Ok(event) if event.is_object() => event,
            _ => {
                if live {
                    self.counts.not_json += 1;
                    eprintln!(
                        "oauth-audit: stream {} message {sequence} ({subject}): not a JSON event, skipped",
                        self.stream
                    );
                }
                return Handled::Unusable;
            }
        };
        if event["kind"] == EventKind::SecurityAlert.as_str() {
            return Handled::Done;
        }
        let id = event["id"].as_str().and_then(|id| Uuid::parse_str(id).ok());
        if let Some(id) = id {
            if !self.recent.insert(id) {
                if live {
                    self.counts.duplicates += 1;
                }
                return Handled::Done;
            }
        }
        let alerts = self.detector.check_json(&event);
        if !live {
            self.counts.replayed += 1;
            return Handled::Done;
        }
        self.counts.events += 1;
        let trigger = id.map_or_else(|| format!("sequence {sequence}"), |id| id.to_string());
        for mut alert in alerts {
            alert.id = alert_id(&alert, &trigger);
            if !self.publish(&alert).await {
                return Handled::Stopped;
            }
            if let Some(rule) = &alert.alert {
                *self.counts.alerts.entry(rule.rule.clone()).or_default() += 1;
            }
            self.auditor.emit(alert);
        }
        Handled::Done
    }

    /// Stores `alert` in the stream, retrying until it is (or until a stop: false).
    async fn publish(&mut self, alert: &AuditEvent) -> bool {
        let encoded = match EncodedEvent::encode(alert) {
            Ok(encoded) => encoded,
            Err(e) => {
                // Cannot happen with the library's own events; the writers still get it.
                tracing::error!("cannot encode an alert: {e}");
                return true;
            }
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            let message = PublishMessage::build()
                .payload(encoded.json().clone())
                .message_id(alert.id.to_string());
            let attempt = async {
                self.jetstream
                    .send_publish(self.alert_subject.clone(), message)
                    .await?
                    .await
            };
            match tokio::time::timeout(TIMEOUT, attempt).await {
                // A duplicate acknowledgement: the stream has it from an earlier attempt.
                Ok(Ok(_)) => return true,
                Ok(Err(e)) => tracing::warn!("cannot publish an alert, retrying: {e}"),
                Err(_) => {
                    tracing::warn!("no acknowledgement of an alert within {TIMEOUT:?}, retrying")
                }
            }
            if self.pause(backoff).await {
                return false;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn summary(&self, durable: &str) {
        let counts = &self.counts;
        let stats = self.detector.stats();
        eprintln!(
            "{} events from stream {} (consumer {durable}): {} alert(s){}; {} duplicate(s) skipped; {} message(s) not JSON; {} event(s) read again to rebuild the windows; {} key(s) forgotten to stay within --max-keys",
            counts.events,
            self.stream,
            counts.alerts.values().sum::<u64>(),
            super::by_rule(&counts.alerts),
            counts.duplicates,
            counts.not_json,
            counts.replayed,
            stats.evicted
        );
    }
}

/// The id of an alert: a UUIDv7 at the alert's time whose other bits come from the rule,
/// the key and the event that raised it, so that the same alert raised again (the event
/// delivered again after a crash) has the same id and the stream drops the copy.
fn alert_id(alert: &AuditEvent, trigger: &str) -> Uuid {
    let (rule, key) = alert
        .alert
        .as_ref()
        .map_or(("", ""), |a| (a.rule.as_str(), a.key.as_str()));
    let digest = Sha256::new()
        .chain_update(rule)
        .chain_update([0])
        .chain_update(key)
        .chain_update([0])
        .chain_update(trigger)
        .finalize();
    let mut bits = [0u8; 10];
    bits.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(alert.time.unix_micros() / 1000).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &bits).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth_audit::event::{Alert, Outcome, Timestamp};
    use std::sync::Arc;

    #[test]
    fn an_alert_raised_again_has_the_same_id() {
        let alert = |rule: &str| {
            let mut event = AuditEvent::new(
                Arc::new(ServiceInfo::default()),
                Timestamp::from_unix(1_800_000_000).unwrap(),
                EventKind::SecurityAlert,
                Outcome::Unknown,
            );
            event.alert = Some(Box::new(Alert::new(rule, "source.ip=192.0.2.1", 10, 900)));
            event
        };
        let id = alert_id(&alert("brute_force"), "trigger");
        assert_eq!(id, alert_id(&alert("brute_force"), "trigger"));
        assert_ne!(id, alert_id(&alert("brute_force"), "another"));
        assert_ne!(id, alert_id(&alert("credential_stuffing"), "trigger"));
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(
            id.get_timestamp().map(|t| t.to_unix().0),
            Some(1_800_000_000)
        );
    }

    #[test]
    fn the_replay_covers_the_longest_rule() {
        // password_spray looks back an hour.
        assert_eq!(
            longest_window(&Detector::default()),
            Duration::from_secs(3600)
        );
    }
}
