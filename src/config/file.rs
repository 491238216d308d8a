//! Sinks on this machine: JSON lines to a file or standard output, rotated files, `tracing`.

use std::path::PathBuf;

use serde::Deserialize;

use super::delivery::WriterRetryConfig;
use super::queue::{OverflowSetting, QueueSettings};
use super::values::{AtLeastOne, FileMode, HumanDuration, Name};
use super::BuildError;
use crate::format::EventFormat;
use crate::writer::{FlushPolicy, JsonLines, RotatingFile, Rotation, TracingWriter};

/// `flush` of a file sink.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushSetting {
    /// When the queue is idle.
    #[default]
    WhenIdle,
    /// After every batch.
    EveryBatch,
    /// After every batch, with fsync.
    Fsync,
}

impl From<FlushSetting> for FlushPolicy {
    fn from(setting: FlushSetting) -> Self {
        match setting {
            FlushSetting::WhenIdle => FlushPolicy::WhenIdle,
            FlushSetting::EveryBatch => FlushPolicy::EveryBatch,
            FlushSetting::Fsync => FlushPolicy::Fsync,
        }
    }
}

/// `type = "jsonl"`: JSON lines appended to a file, or to standard output with `path = "-"`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonLinesConfig {
    /// The file, or `-` (or `/dev/stdout`) for standard output.
    pub path: PathBuf,
    /// `oauth-audit` (schema v1, the default), `ecs` or `ocsf`: how each line is written
    /// (`docs/formats.md`). Only schema v1 can have a `retry.spool_dir`.
    #[serde(default)]
    pub format: EventFormat,
    /// Permissions of the file when it is created (default 0o600).
    pub mode: Option<FileMode>,
    /// When lines reach the operating system.
    #[serde(default)]
    pub flush: FlushSetting,
    /// What happens when the sink's queue is full.
    pub overflow: Option<OverflowSetting>,
    /// With `overflow = "block"`: the longest a request waits for room.
    pub block_timeout: Option<HumanDuration>,
    /// Events this sink may have waiting (default: `[queue] capacity`).
    pub queue_capacity: Option<AtLeastOne>,
    /// `[writer.retry]`: retries and a spool for a failing file (default: none, a failed
    /// batch is dropped and reported).
    pub retry: Option<WriterRetryConfig>,
}

impl JsonLinesConfig {
    /// JSON lines to `path` (`-`: standard output), every other setting at its default.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonLinesConfig {
            path: path.into(),
            format: EventFormat::default(),
            mode: None,
            flush: FlushSetting::default(),
            overflow: None,
            block_timeout: None,
            queue_capacity: None,
            retry: None,
        }
    }

    /// Opens the file (created when missing) or standard output (`-`, or `/dev/stdout`,
    /// which is a symbolic link and so could not be opened as a file: audit files are never
    /// opened through one).
    pub async fn build(&self) -> Result<JsonLines, BuildError> {
        let writer = if matches!(self.path.to_str(), Some("-" | "/dev/stdout")) {
            JsonLines::stdout()
        } else {
            let mode = self.mode.map_or(crate::writer::DEFAULT_FILE_MODE, |m| m.0);
            JsonLines::file_with_mode(&self.path, mode)
                .await
                .map_err(|source| BuildError::Open {
                    path: self.path.clone(),
                    source,
                })?
        };
        Ok(writer.flush_policy(self.flush.into()).format(self.format))
    }

    /// The queue settings.
    pub fn queue(&self) -> QueueSettings {
        QueueSettings {
            overflow: self.overflow,
            block_timeout: self.block_timeout,
            queue_capacity: self.queue_capacity,
        }
    }
}

/// `rotation` of a rotating sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationSetting {
    /// At midnight UTC.
    Daily,
    /// Every hour.
    Hourly,
    /// Only by size.
    Never,
}

impl From<RotationSetting> for Rotation {
    fn from(setting: RotationSetting) -> Self {
        match setting {
            RotationSetting::Daily => Rotation::Daily,
            RotationSetting::Hourly => Rotation::Hourly,
            RotationSetting::Never => Rotation::Never,
        }
    }
}

/// `type = "rotating"`: JSON lines to a directory of rotated, optionally compressed files.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotatingFileConfig {
    /// The directory.
    pub dir: PathBuf,
    /// `oauth-audit` (schema v1, the default), `ecs` or `ocsf`: how each line is written
    /// (`docs/formats.md`). Only schema v1 can have a `retry.spool_dir`.
    #[serde(default)]
    pub format: EventFormat,
    /// Permissions of the files it creates (default 0o600).
    pub mode: Option<FileMode>,
    /// File name prefix (`audit`).
    pub prefix: Option<Name>,
    /// `daily`, `hourly` or `never`.
    pub rotation: Option<RotationSetting>,
    /// Rotate when the active file reaches this size.
    pub max_bytes: Option<AtLeastOne>,
    /// gzip rotated files.
    pub compress: Option<bool>,
    /// Delete rotated files older than this.
    pub retain_for: Option<HumanDuration>,
    /// Keep at most this many rotated files.
    pub max_files: Option<AtLeastOne>,
    /// When lines reach the operating system.
    #[serde(default)]
    pub flush: FlushSetting,
    /// What happens when the sink's queue is full.
    pub overflow: Option<OverflowSetting>,
    /// With `overflow = "block"`: the longest a request waits for room.
    pub block_timeout: Option<HumanDuration>,
    /// Events this sink may have waiting (default: `[queue] capacity`).
    pub queue_capacity: Option<AtLeastOne>,
    /// `[writer.retry]`: retries and a spool for a failing file (default: none, a failed
    /// batch is dropped and reported).
    pub retry: Option<WriterRetryConfig>,
}

impl RotatingFileConfig {
    /// Creates the directory when missing and recovers what a previous run left in it.
    pub fn build(&self) -> Result<RotatingFile, BuildError> {
        let mut rotating = RotatingFile::builder(&self.dir)
            .flush_policy(self.flush.into())
            .format(self.format);
        if let Some(mode) = self.mode {
            rotating = rotating.file_mode(mode.0);
        }
        if let Some(prefix) = &self.prefix {
            rotating = rotating.prefix(prefix.0.clone());
        }
        if let Some(rotation) = self.rotation {
            rotating = rotating.rotation(rotation.into());
        }
        if let Some(bytes) = self.max_bytes {
            rotating = rotating.max_bytes(bytes.0);
        }
        if let Some(compress) = self.compress {
            rotating = rotating.compress(compress);
        }
        if let Some(age) = self.retain_for {
            rotating = rotating.retain_for(age.0);
        }
        if let Some(count) = self.max_files {
            rotating = rotating.max_files(count.get());
        }
        rotating.build().map_err(|e| {
            BuildError::invalid(format!("writer (rotating, {})", self.dir.display()), e)
        })
    }

    /// The queue settings.
    pub fn queue(&self) -> QueueSettings {
        QueueSettings {
            overflow: self.overflow,
            block_timeout: self.block_timeout,
            queue_capacity: self.queue_capacity,
        }
    }
}

/// `type = "tracing"`: one `tracing` event per audit event (target `oauth_audit`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// What happens when the sink's queue is full.
    pub overflow: Option<OverflowSetting>,
    /// With `overflow = "block"`: the longest a request waits for room.
    pub block_timeout: Option<HumanDuration>,
    /// Events this sink may have waiting (default: `[queue] capacity`).
    pub queue_capacity: Option<AtLeastOne>,
}

impl TracingConfig {
    /// The writer.
    pub fn build(&self) -> TracingWriter {
        TracingWriter::new()
    }

    /// The queue settings.
    pub fn queue(&self) -> QueueSettings {
        QueueSettings {
            overflow: self.overflow,
            block_timeout: self.block_timeout,
            queue_capacity: self.queue_capacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JsonLinesConfig;

    #[tokio::test]
    async fn dev_stdout_is_standard_output_and_other_links_are_refused() {
        JsonLinesConfig::new("-").build().await.unwrap();
        // A symbolic link to /proc/self/fd/1 on Linux: opened as a file, it would be refused.
        JsonLinesConfig::new("/dev/stdout").build().await.unwrap();
        #[cfg(unix)]
        {
            let dir = tempfile::tempdir().unwrap();
            let link = dir.path().join("audit.jsonl");
            std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
            let error = JsonLinesConfig::new(&link).build().await.unwrap_err();
            assert!(error.to_string().contains("symbolic link"), "{error}");
            // The system's link to standard error is followed, as /dev/stdout is read.
            JsonLinesConfig::new("/dev/stderr").build().await.unwrap();
        }
    }
}
