//! The chaining processor: links every event to the one before it and seals the chain with
//! signed checkpoints.

use std::fs::File;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::note::{origin, CheckpointNote};
use super::state::{SaveError, StateError, StateFile};
use super::{Chaining, SigningKey};
use crate::event::{
    AuditEvent, Canonicalizer, ChainLink, Checkpoint, EventHash, EventKind, Outcome, ServiceInfo,
    Timestamp,
};
use crate::process::Processor;
use crate::ConfigError;

/// The processor [`Chaining`] builds; always the last processor of the pipeline, so that
/// every event, including those other processors add, is chained.
pub(crate) struct Chainer {
    stream: Arc<str>,
    seq: u64,
    prev: Option<EventHash>,
    /// The last sequence number a checkpoint covers (or the checkpoint itself).
    sealed: u64,
    last_checkpoint: Instant,
    every: u64,
    interval: Duration,
    key: Option<SigningKey>,
    service: Arc<ServiceInfo>,
    state: Option<StateFile>,
    state_health: StateHealth,
    checkpoint_file: Option<File>,
    #[cfg(feature = "http")]
    checkpoint_url: Option<super::post::Poster>,
    /// Its buffers are kept from one event to the next.
    canonical: Canonicalizer,
}

impl Chainer {
    pub(crate) fn start(
        chaining: Chaining,
        service: Arc<ServiceInfo>,
    ) -> Result<Self, ConfigError> {
        let (state, saved) = match &chaining.state_file {
            Some(path) => {
                let (state, saved) = StateFile::open(path).map_err(|err| match err {
                    StateError::Locked { .. } | StateError::Io { .. } => {
                        ConfigError::invalid("chain state_file", err.to_string())
                    }
                })?;
                (Some(state), saved)
            }
            None => (None, None),
        };
        let (stream, seq, prev) = match saved {
            Some(saved) => (saved.stream.into(), saved.seq, Some(saved.hash)),
            None => (uuid::Uuid::now_v7().to_string().into(), 0, None),
        };
        let checkpoint_file = match &chaining.checkpoint_file {
            Some(path) => {
                let mut options = std::fs::OpenOptions::new();
                crate::no_follow::no_follow(options.append(true).create(true));
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                Some(
                    crate::file_owner::open(&options, path, None).map_err(|err| {
                        ConfigError::invalid(
                            "chain checkpoint_file",
                            format!("{}: {err}", path.display()),
                        )
                    })?,
                )
            }
            None => None,
        };
        #[cfg(feature = "http")]
        let checkpoint_url = chaining
            .checkpoint_url
            .as_deref()
            .map(super::post::Poster::start)
            .transpose()?;
        #[cfg(not(feature = "http"))]
        if chaining.checkpoint_url.is_some() {
            return Err(ConfigError::invalid(
                "chain checkpoint_url",
                "posting checkpoints needs the `http` feature",
            ));
        }
        Ok(Chainer {
            stream,
            seq,
            prev,
            sealed: seq,
            last_checkpoint: Instant::now(),
            every: chaining.checkpoint_every,
            interval: chaining.checkpoint_interval,
            key: chaining.key,
            service,
            state,
            state_health: StateHealth::Saved,
            checkpoint_file,
            #[cfg(feature = "http")]
            checkpoint_url,
            canonical: Canonicalizer::default(),
        })
    }

    /// What tells when the checkpoints handed to `checkpoint_url` are all posted.
    #[cfg(feature = "http")]
    pub(crate) fn posted(&self) -> Option<super::Posted> {
        self.checkpoint_url
            .as_ref()
            .map(super::post::Poster::posted)
    }

    /// Gives `event` the next place in the stream.
    fn link(&mut self, event: &mut AuditEvent) {
        self.seq += 1;
        event.chain = Some(Box::new(ChainLink {
            stream: self.stream.clone(),
            seq: self.seq,
            prev: self.prev,
        }));
        let hash = match self.canonical.write_event(event) {
            Ok(json) => {
                let hash = EventHash::of_bytes(json);
                // The sinks write these very bytes: serialised once, for every sink.
                let json = bytes::Bytes::copy_from_slice(json);
                event.json.set(json);
                hash
            }
            Err(err) => {
                // Nothing in an event fails to serialise; should it, the chain still moves
                // on and `verify` shows the event as edited rather than the chain stopping.
                tracing::error!(target: "oauth_audit", error = %err, "event could not be hashed");
                EventHash::default()
            }
        };
        self.prev = Some(hash);
        if let Some(state) = &mut self.state {
            let saved = state.save(&self.stream, self.seq, &hash);
            self.state_health = self.state_health.after(saved);
        }
    }

    /// Emits a signed checkpoint over everything so far, unless nothing is new.
    fn checkpoint(&mut self, emitted: &mut Vec<AuditEvent>) {
        let (Some(key), Some(hash)) = (&self.key, self.prev) else {
            return;
        };
        if self.seq == self.sealed {
            return;
        }
        let time = Timestamp::now();
        let note = CheckpointNote {
            origin: origin(&self.stream),
            size: self.seq,
            hash,
            time: time.to_string(),
        }
        .sign(key);
        let mut event = AuditEvent::new(
            self.service.clone(),
            time,
            EventKind::AuditCheckpoint,
            Outcome::Success,
        );
        event.checkpoint = Some(Box::new(Checkpoint {
            stream: self.stream.clone(),
            seq: self.seq,
            hash,
            note,
        }));
        self.link(&mut event);
        // The checkpoint itself needs no checkpoint of its own.
        self.sealed = self.seq;
        self.last_checkpoint = Instant::now();
        self.publish(&event);
        emitted.push(event);
    }

    /// Copies a checkpoint to the places outside the log storage.
    fn publish(&mut self, event: &AuditEvent) {
        if self.checkpoint_file.is_none() && !self.posts() {
            return;
        }
        let mut line = match event.json.get() {
            Some(json) => json.to_vec(),
            None => match crate::event::canonical_json(event) {
                Ok(json) => json,
                Err(_) => return,
            },
        };
        line.push(b'\n');
        if let Some(file) = &mut self.checkpoint_file {
            if let Err(err) = file.write_all(&line).and_then(|()| file.sync_data()) {
                tracing::warn!(
                    target: "oauth_audit",
                    error = %err,
                    "checkpoint could not be written to the checkpoint file"
                );
            }
        }
        #[cfg(feature = "http")]
        if let Some(poster) = &self.checkpoint_url {
            poster.post(line);
        }
    }

    fn posts(&self) -> bool {
        #[cfg(feature = "http")]
        return self.checkpoint_url.is_some();
        #[cfg(not(feature = "http"))]
        false
    }
}

/// What the state file says after the last save, so that each change is logged once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StateHealth {
    /// The last event's place.
    Saved,
    /// Nothing: a restart starts a new stream.
    Emptied,
    /// An earlier event's place, from which a restart would reuse sequence numbers.
    Stale,
}

impl StateHealth {
    /// The health after a save that came out as `saved`, logging the change.
    fn after(self, saved: Result<(), SaveError>) -> StateHealth {
        match (self, saved) {
            (StateHealth::Saved, Ok(())) => StateHealth::Saved,
            (_, Ok(())) => {
                tracing::info!(target: "oauth_audit", "chain state file written again");
                StateHealth::Saved
            }
            // Once emptied, a failed write leaves at most part of a line, refused at start.
            (StateHealth::Emptied, Err(_)) => StateHealth::Emptied,
            (_, Err(SaveError::Emptied(error))) => {
                tracing::warn!(
                    target: "oauth_audit",
                    %error,
                    "chain state file could not be written and was emptied; a restart will \
                     start a new stream"
                );
                StateHealth::Emptied
            }
            (StateHealth::Stale, Err(SaveError::Stale { .. })) => StateHealth::Stale,
            (StateHealth::Saved, Err(SaveError::Stale { write, empty })) => {
                tracing::error!(
                    target: "oauth_audit",
                    error = %write,
                    empty_error = %empty,
                    "chain state file could neither be written nor emptied: a restart now \
                     would continue the stream from an earlier event, and `verify` would \
                     report the events since as inserted; move the state file away before \
                     restarting"
                );
                StateHealth::Stale
            }
        }
    }
}

impl Processor for Chainer {
    fn name(&self) -> &str {
        "chain"
    }

    fn process(&mut self, event: &mut AuditEvent, emitted: &mut Vec<AuditEvent>) {
        self.link(event);
        if self.seq - self.sealed >= self.every {
            self.checkpoint(emitted);
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.key
            .as_ref()
            .map(|_| (self.interval / 4).max(Duration::from_millis(10)))
    }

    fn tick(&mut self, emitted: &mut Vec<AuditEvent>) {
        if self.last_checkpoint.elapsed() >= self.interval {
            self.checkpoint(emitted);
        }
    }

    fn finish(&mut self, emitted: &mut Vec<AuditEvent>) {
        self.checkpoint(emitted);
        if let Some(state) = &mut self.state {
            if let Err(err) = state.sync() {
                tracing::warn!(target: "oauth_audit", error = %err, "chain state file not synced");
            }
        }
    }
}
