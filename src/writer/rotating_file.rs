use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{append_encoded, append_json_lines, AuditWriter, FlushPolicy, WriteError, WRITE_CHUNK};
use crate::event::AuditEvent;
use crate::format::EventFormat;
use crate::sink::EncodedEvent;
use crate::ConfigError;

/// When a [`RotatingFile`] starts a new file, besides its size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation {
    /// Only by size.
    Never,
    /// At each new UTC hour.
    Hourly,
    /// At each new UTC day.
    Daily,
}

/// JSON lines into a directory of files that rotate by size and time, are compressed, and are
/// deleted after a retention period: the file writer for long-running services.
///
/// The active file is `<prefix>.jsonl`. At rotation it is flushed and fsynced, renamed to
/// `<prefix>-<UTC time>.jsonl` (an atomic rename: from here on a crash cannot lose it), and
/// compressed to `<prefix>-<UTC time>.jsonl.gz` through a temporary file that is fsynced and
/// renamed before the uncompressed file is removed. A crash at any point loses at most the
/// unflushed tail of the active file, never a rotated file; leftovers (an uncompressed rotated
/// file, a partial `.gz.tmp`) are finished or cleaned when the writer starts again.
///
/// `<prefix>.lock` is locked while the writer lives: a second writer of the same directory and
/// prefix, in this process or another, is refused.
///
/// ```no_run
/// use std::time::Duration;
/// use oauth_audit::writer::{Auditor, RotatingFile, Rotation};
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let writer = RotatingFile::builder("/var/log/oauth-audit")
///     .rotation(Rotation::Daily)
///     .max_bytes(256 * 1024 * 1024)
///     .retain_for(Duration::from_secs(365 * 24 * 3600)) // what SOC 2 auditors expect
///     .build()?;
/// let auditor = Auditor::builder().writer(writer).build()?;
/// # Ok(()) }
/// ```
pub struct RotatingFile {
    config: Arc<Config>,
    /// The open file, moved to the blocking pool and back for each I/O.
    active: Option<Active>,
    buf: Vec<u8>,
    name: String,
}

struct Config {
    dir: PathBuf,
    prefix: String,
    rotation: Rotation,
    max_bytes: Option<u64>,
    compress: bool,
    retain_for: Option<Duration>,
    max_files: Option<usize>,
    policy: FlushPolicy,
    mode: u32,
    format: EventFormat,
    clock: Box<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// `<prefix>.lock`, locked while the writer lives (see [`lock`]).
    _lock: File,
}

struct Active {
    file: File,
    size: u64,
    period: String,
}

impl std::fmt::Debug for RotatingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingFile")
            .field("dir", &self.config.dir)
            .field("prefix", &self.config.prefix)
            .field("rotation", &self.config.rotation)
            .field("format", &self.config.format)
            .finish_non_exhaustive()
    }
}

impl RotatingFile {
    /// Writes out what the flush policy asks for, now that `buf` grew from `start`. On error
    /// the new lines are taken back out: the batch failed, and a retry must not write it twice.
    async fn appended(&mut self, start: usize) -> Result<(), WriteError> {
        let policy = self.config.policy;
        let result = if policy != FlushPolicy::WhenIdle {
            AuditWriter::flush(self).await
        } else if self.buf.len() >= WRITE_CHUNK {
            self.blocking(|config, active, mut buf| {
                let result = config.write(active, &buf);
                if result.is_ok() {
                    buf.clear();
                }
                (buf, result)
            })
            .await
        } else {
            Ok(())
        };
        if result.is_err() {
            self.buf.truncate(start);
        }
        result
    }

    /// Starts configuring a writer into `dir` (created when missing).
    pub fn builder(dir: impl Into<PathBuf>) -> RotatingFileBuilder {
        RotatingFileBuilder {
            dir: dir.into(),
            prefix: "audit".into(),
            rotation: Rotation::Daily,
            max_bytes: None,
            compress: true,
            retain_for: None,
            max_files: None,
            policy: FlushPolicy::WhenIdle,
            mode: super::DEFAULT_FILE_MODE,
            format: EventFormat::default(),
            clock: None,
        }
    }

    /// Runs `op` on the blocking pool with the active file.
    async fn blocking<T: Send + 'static>(
        &mut self,
        op: impl FnOnce(&Config, &mut Option<Active>, Vec<u8>) -> (Vec<u8>, io::Result<T>)
            + Send
            + 'static,
    ) -> Result<T, WriteError> {
        let config = self.config.clone();
        let mut active = self.active.take();
        let buf = std::mem::take(&mut self.buf);
        let (active, buf, result) = tokio::task::spawn_blocking(move || {
            let (buf, result) = op(&config, &mut active, buf);
            (active, buf, result)
        })
        .await
        .map_err(|e| WriteError::backend(format!("rotating file task: {e}")))?;
        self.active = active;
        self.buf = buf;
        Ok(result?)
    }
}

impl Config {
    fn active_path(&self) -> PathBuf {
        self.dir.join(format!("{}.jsonl", self.prefix))
    }

    fn period(&self, now: DateTime<Utc>) -> String {
        match self.rotation {
            Rotation::Never => String::new(),
            Rotation::Hourly => now.format("%Y%m%dT%H").to_string(),
            Rotation::Daily => now.format("%Y%m%d").to_string(),
        }
    }

    fn open(&self) -> io::Result<Active> {
        let path = self.active_path();
        let file = crate::file_owner::open(
            super::file_options(self.mode).create(true).append(true),
            &path,
            Some(self.mode),
        )
        .map_err(super::naming(&path))?;
        let size = file.metadata()?.len();
        // A file left from before keeps its period: its modification time says when.
        let modified: DateTime<Utc> = file
            .metadata()?
            .modified()
            .map(Into::into)
            .unwrap_or_else(|_| (self.clock)());
        Ok(Active {
            file,
            size,
            period: self.period(modified),
        })
    }

    /// Writes `buf` out, rotating first when the period changed or the size limit would be
    /// passed.
    fn write(&self, active: &mut Option<Active>, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let now = (self.clock)();
        let current = match active.take() {
            Some(current) => current,
            None => self.open()?,
        };
        let new_period = current.period != self.period(now);
        let too_big = self
            .max_bytes
            .is_some_and(|max| current.size > 0 && current.size + buf.len() as u64 > max);
        *active = Some(current);
        if new_period || too_big {
            self.rotate(active, now)?;
            *active = Some(self.open()?);
        }
        if let Some(current) = active.as_mut() {
            // The file's length now, not `current.size`: a file truncated meanwhile
            // (logrotate's `copytruncate`) is shorter than this writer counted.
            let before = current.file.metadata()?.len();
            if let Err(error) = current.file.write_all(buf) {
                // Part of `buf` may be in the file (a disk that filled up mid-write): cut it
                // off, or the lines written again later would follow a torn one, and the
                // whole ones written twice. Only when the file grew by no more than this
                // write: nobody else truncated or appended to it meanwhile.
                let grown = current
                    .file
                    .metadata()
                    .is_ok_and(|m| (before..=before + buf.len() as u64).contains(&m.len()));
                if grown {
                    let _ = current.file.set_len(before);
                }
                return Err(error);
            }
            current.size += buf.len() as u64;
        }
        Ok(())
    }

    fn rotate(&self, active: &mut Option<Active>, now: DateTime<Utc>) -> io::Result<()> {
        if let Some(current) = active.take() {
            current.file.sync_all()?;
        }
        let rotated = self.dir.join(format!(
            "{}-{}.jsonl",
            self.prefix,
            now.format("%Y%m%dT%H%M%S%.6fZ")
        ));
        fs::rename(self.active_path(), &rotated)?;
        sync_dir(&self.dir);
        if self.compress {
            compress(&rotated, self.mode)?;
        }
        self.retain(now);
        Ok(())
    }

    /// Rotated files, oldest first (their names sort by time). Only `<prefix>-<UTC time>`
    /// names are this writer's: another writer's files in the same directory (say the prefix
    /// `audit-chain` next to `audit`, its active `audit-chain.jsonl` included) are not.
    fn rotated_files(&self) -> io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| rotated_at(&self.prefix, p).is_some())
            .collect();
        files.sort();
        Ok(files)
    }

    /// Applies retention; a file it cannot delete (under an operator's hold, `chattr +i`) is
    /// logged and stays, with every newer one: housekeeping never costs an event, nor the
    /// writer's start.
    fn retain(&self, now: DateTime<Utc>) {
        if let Err(error) = self.apply_retention(now) {
            tracing::warn!(
                target: "oauth_audit",
                dir = %self.dir.display(),
                prefix = %self.prefix,
                %error,
                "audit file retention failed; rotated files past it are kept"
            );
        }
    }

    fn apply_retention(&self, now: DateTime<Utc>) -> io::Result<()> {
        let files = self.rotated_files()?;
        let mut keep = files.len();
        // Oldest first: once a file may stay, every later one may too.
        for path in &files {
            let too_many = self.max_files.is_some_and(|max| keep > max);
            let too_old = self.retain_for.is_some_and(|age| {
                rotated_at(&self.prefix, path)
                    .is_some_and(|t| now.signed_duration_since(t).to_std().is_ok_and(|d| d > age))
            });
            if !(too_many || too_old) {
                break;
            }
            fs::remove_file(path).map_err(super::naming(path))?;
            keep -= 1;
        }
        Ok(())
    }

    /// Finishes what a crash interrupted: partial compressions are removed and redone,
    /// rotated files left uncompressed are compressed.
    fn recover(&self) -> io::Result<()> {
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let partial = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".gz.tmp"));
            if partial.is_some_and(|n| rotated_at(&self.prefix, Path::new(n)).is_some()) {
                fs::remove_file(&path)?;
            }
        }
        if self.compress {
            for path in self.rotated_files()? {
                if path.extension().is_some_and(|e| e == "jsonl") {
                    compress(&path, self.mode)?;
                }
            }
        }
        self.retain((self.clock)());
        Ok(())
    }
}

/// When a rotated file of the writer with `prefix` was rotated, from its name
/// (`<prefix>-<UTC time>.jsonl`, or `.jsonl.gz`); `None` for any other file.
fn rotated_at(prefix: &str, path: &Path) -> Option<DateTime<Utc>> {
    let name = path.file_name()?.to_str()?;
    let stamp = name.strip_prefix(prefix)?.strip_prefix('-')?;
    let stamp = stamp
        .strip_suffix(".jsonl.gz")
        .or_else(|| stamp.strip_suffix(".jsonl"))?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.fZ")
        .ok()
        .map(|t| t.and_utc())
}

/// `x.jsonl` -> `x.jsonl.gz` through `x.jsonl.gz.tmp`, fsynced, then `x.jsonl` removed.
fn compress(path: &Path, mode: u32) -> io::Result<()> {
    let gz = path.with_extension("jsonl.gz");
    let tmp = path.with_extension("jsonl.gz.tmp");
    {
        let mut input = crate::file_owner::open_read(path, Some(mode))?;
        // Emptied once checked, not at the open (`O_TRUNC`): a file planted there that is
        // another file's second name is refused with that other file's text intact.
        let output = crate::file_owner::open(
            super::file_options(mode)
                .write(true)
                .create(true)
                .truncate(false),
            &tmp,
            Some(mode),
        )?;
        output.set_len(0)?;
        let mut encoder = flate2::write::GzEncoder::new(output, flate2::Compression::default());
        io::copy(&mut input, &mut encoder)?;
        encoder.finish()?.sync_all()?;
    }
    fs::rename(&tmp, &gz)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    fs::remove_file(path)
}

/// Takes `<prefix>.lock` in `dir`, which the writer holds as long as it lives. A second
/// writer of the same directory and prefix (another process, or a second writer of the same
/// configuration) would rename the active file away from under the first, which would go on
/// writing into a rotated file and then compress and remove it: its later events lost.
fn lock(dir: &Path, prefix: &str, mode: u32) -> io::Result<File> {
    let path = dir.join(format!("{prefix}.lock"));
    let file = crate::file_owner::open(
        super::file_options(mode)
            .write(true)
            .create(true)
            .truncate(false),
        &path,
        Some(mode),
    )
    .map_err(super::naming(&path))?;
    if !crate::file_lock::try_lock(&file, crate::file_lock::Mode::Exclusive)? {
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "{} is held by another writer of the prefix {prefix:?} in this directory \
                 (each writer needs its own directory or prefix)",
                path.display()
            ),
        ));
    }
    Ok(file)
}

/// Makes renames in `dir` durable (best effort: not every platform can open a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Configures a [`RotatingFile`].
#[must_use]
pub struct RotatingFileBuilder {
    dir: PathBuf,
    prefix: String,
    rotation: Rotation,
    max_bytes: Option<u64>,
    compress: bool,
    retain_for: Option<Duration>,
    max_files: Option<usize>,
    policy: FlushPolicy,
    mode: u32,
    format: EventFormat,
    clock: Option<Box<dyn Fn() -> DateTime<Utc> + Send + Sync>>,
}

impl std::fmt::Debug for RotatingFileBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingFileBuilder")
            .field("dir", &self.dir)
            .field("prefix", &self.prefix)
            .field("rotation", &self.rotation)
            .field("max_bytes", &self.max_bytes)
            .field("retain_for", &self.retain_for)
            .field("max_files", &self.max_files)
            .finish_non_exhaustive()
    }
}

impl RotatingFileBuilder {
    /// File names start with this (default `audit`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Time-based rotation (default daily, UTC).
    pub fn rotation(mut self, rotation: Rotation) -> Self {
        self.rotation = rotation;
        self
    }

    /// Rotate before a file would pass this size.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Gzip rotated files (default `true`).
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// Delete rotated files older than this.
    pub fn retain_for(mut self, age: Duration) -> Self {
        self.retain_for = Some(age);
        self
    }

    /// Keep at most this many rotated files (oldest deleted first).
    pub fn max_files(mut self, count: usize) -> Self {
        self.max_files = Some(count);
        self
    }

    /// When lines are flushed and fsynced (default [`FlushPolicy::WhenIdle`]).
    pub fn flush_policy(mut self, policy: FlushPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The permissions of the files it creates, on Unix (default `0o600`, owner only; the
    /// process umask still applies). A directory it creates gets the same bits, plus search
    /// (`x`) wherever reading is allowed. Existing files and directories keep theirs, but a
    /// file the writer opens (active, rotated, lock) must be owned by the process's effective
    /// user, have no other name (hard link) and be writable by group or others no more than
    /// `mode` allows, or it is refused with an error that names it and its owner or its link
    /// count.
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// How each event is written (default [`EventFormat::OAuthAudit`], schema v1). Files keep
    /// their `.jsonl` names in every format. In another format the writer has no disk spool
    /// ([`AuditWriter::accepts_json`]): its retries, if it has any, keep the events in memory.
    pub fn format(mut self, format: EventFormat) -> Self {
        self.format = format;
        self
    }

    /// The clock that decides rotation and retention (default: the system clock). For tests.
    #[doc(hidden)]
    pub fn clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Some(Box::new(clock));
        self
    }

    /// Checks the configuration, creates the directory, and finishes what a crash left.
    pub fn build(self) -> Result<RotatingFile, ConfigError> {
        if self.prefix.is_empty() || self.prefix.contains(['/', '\\']) {
            return Err(ConfigError::invalid(
                "rotating file prefix",
                format!("{:?} is not a file name prefix", self.prefix),
            ));
        }
        if self.max_bytes == Some(0) || self.max_files == Some(0) {
            return Err(ConfigError::invalid(
                "rotating file",
                "max_bytes and max_files must be at least 1",
            ));
        }
        let dir_error = |e: io::Error| {
            ConfigError::invalid(
                "rotating file directory",
                format!("{}: {e}", self.dir.display()),
            )
        };
        if let Err(problem) = super::check_file_mode(self.mode) {
            return Err(ConfigError::invalid("rotating file mode", problem));
        }
        super::create_dir(&self.dir, self.mode).map_err(dir_error)?;
        // Before recovery: a writer still running may be compressing or pruning.
        let lock = lock(&self.dir, &self.prefix, self.mode).map_err(dir_error)?;
        let config = Config {
            dir: self.dir.clone(),
            prefix: self.prefix,
            rotation: self.rotation,
            max_bytes: self.max_bytes,
            compress: self.compress,
            retain_for: self.retain_for,
            max_files: self.max_files,
            policy: self.policy,
            mode: self.mode,
            format: self.format,
            clock: self.clock.unwrap_or_else(|| Box::new(Utc::now)),
            _lock: lock,
        };
        config.recover().map_err(dir_error)?;
        Ok(RotatingFile {
            name: format!("rotating:{}", config.dir.display()),
            config: Arc::new(config),
            active: None,
            buf: Vec::new(),
        })
    }
}

impl AuditWriter for RotatingFile {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        let start = self.buf.len();
        append_json_lines(&mut self.buf, batch, self.config.format)?;
        self.appended(start).await
    }

    async fn write_encoded(&mut self, batch: &[EncodedEvent]) -> Result<(), WriteError> {
        let start = self.buf.len();
        append_encoded(&mut self.buf, batch, self.config.format)?;
        self.appended(start).await
    }

    /// Only in schema v1: another format is made from the event itself.
    fn accepts_json(&self) -> bool {
        self.config.format == EventFormat::OAuthAudit
    }

    async fn flush(&mut self) -> Result<(), WriteError> {
        self.blocking(|config, active, mut buf| {
            let result = config.write(active, &buf).and_then(|()| {
                buf.clear();
                match (active.as_mut(), config.policy) {
                    (Some(current), FlushPolicy::Fsync) => current.file.sync_data(),
                    (Some(current), _) => current.file.flush(),
                    (None, _) => Ok(()),
                }
            });
            (buf, result)
        })
        .await
    }

    /// The lines in the buffer: those a failed write or flush left there.
    fn unwritten_events(&self) -> usize {
        self.buf.iter().filter(|&&b| b == b'\n').count()
    }
}
