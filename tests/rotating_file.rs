//! The rotating file writer: size and time rotation, compression, retention, crash recovery.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, Timestamp};
use oauth_audit::writer::{Auditor, FlushPolicy, RotatingFile, Rotation};

#[cfg(unix)]
#[path = "support/full_disk.rs"]
mod full_disk;
#[path = "support/temp_dir.rs"]
mod temp_dir;

/// A directory of the test's own, removed when the test ends.
fn tempdir(name: &str) -> (tempfile::TempDir, PathBuf) {
    temp_dir::temp_dir(&format!("rot-{name}"))
}

/// Every line of every file in `dir` (rotated, compressed or not, and active), by file name.
fn lines(dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "lock"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let mut text = String::new();
            let file = std::fs::File::open(&path).unwrap();
            if name.ends_with(".gz") {
                flate2::read::GzDecoder::new(file)
                    .read_to_string(&mut text)
                    .unwrap();
            } else {
                std::io::BufReader::new(file)
                    .read_to_string(&mut text)
                    .unwrap();
            }
            (name, text.lines().map(str::to_owned).collect())
        })
        .collect()
}

fn ids(all: &[(String, Vec<String>)]) -> Vec<String> {
    all.iter()
        .flat_map(|(_, lines)| lines.iter())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn emit(auditor: &Auditor, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let e = AuditEvent::new(
                auditor.service().clone(),
                Timestamp::now(),
                EventKind::ResourceAccessed,
                Outcome::Success,
            );
            let id = e.id.to_string();
            auditor.emit(e);
            id
        })
        .collect()
}

#[derive(Clone)]
struct Clock(Arc<Mutex<DateTime<Utc>>>);

impl Clock {
    fn at(y: i32, m: u32, d: u32, h: u32) -> Clock {
        Clock(Arc::new(Mutex::new(
            Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap(),
        )))
    }
    fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
    fn reader(&self) -> impl Fn() -> DateTime<Utc> + Send + Sync + 'static {
        let c = self.0.clone();
        move || *c.lock().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotates_by_size_and_loses_nothing() {
    let (_guard, dir) = tempdir("size");
    // Every batch goes out at once, so rotation happens between batches whatever the timing.
    let writer = RotatingFile::builder(&dir)
        .rotation(Rotation::Never)
        .max_bytes(4_000)
        .flush_policy(FlushPolicy::EveryBatch)
        .build()
        .unwrap();
    let auditor = Auditor::builder()
        .batch_size(8)
        .writer(writer)
        .build()
        .unwrap();
    let sent = emit(&auditor, 100);
    auditor.shutdown().await;
    let all = lines(&dir);
    assert!(
        all.len() > 2,
        "expected several rotated files: {:?}",
        all.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(
        all[..all.len() - 1]
            .iter()
            .all(|(name, _)| name.ends_with(".jsonl.gz")),
        "rotated files are compressed"
    );
    assert_eq!(all.last().unwrap().0, "audit.jsonl");
    assert_eq!(ids(&all), sent, "every event once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotates_daily_and_applies_retention() {
    let (_guard, dir) = tempdir("daily");
    let clock = Clock::at(2026, 1, 1, 12);
    let build = || {
        RotatingFile::builder(&dir)
            .rotation(Rotation::Daily)
            .retain_for(Duration::from_secs(2 * 24 * 3600))
            .clock(clock.reader())
            .build()
            .unwrap()
    };
    let auditor = Auditor::builder().writer(build()).build().unwrap();
    let day1 = emit(&auditor, 3);
    auditor.shutdown().await;

    // Each following day, a new process writes a little: the first write of the day rotates.
    let mut per_day = vec![day1];
    for day in 2..=5 {
        clock.set(Utc.with_ymd_and_hms(2026, 1, day, 9, 0, 0).unwrap());
        // The active file's period comes from its modification time: make it yesterday's.
        let active = dir.join("audit.jsonl");
        let yesterday =
            std::time::SystemTime::from(Utc.with_ymd_and_hms(2026, 1, day - 1, 12, 0, 0).unwrap());
        std::fs::File::options()
            .append(true)
            .open(&active)
            .unwrap()
            .set_modified(yesterday)
            .unwrap();
        let auditor = Auditor::builder().writer(build()).build().unwrap();
        per_day.push(emit(&auditor, 3));
        auditor.shutdown().await;
    }
    let all = lines(&dir);
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    // A rotated file is named for when it was rotated: the day after its events. Day 5 is
    // active; the rotations of days 3, 4 and 5 (events of days 2, 3, 4) are at most two days
    // old; the rotation of day 2 (events of day 1) is older and was deleted.
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names[0].starts_with("audit-20260103T") && names[0].ends_with(".jsonl.gz"),
        "{names:?}"
    );
    assert!(names[2].starts_with("audit-20260105T"), "{names:?}");
    assert_eq!(names[3], "audit.jsonl");
    assert_eq!(ids(&all), per_day[1..].concat());
}

#[tokio::test]
async fn max_files_keeps_the_newest() {
    let (_guard, dir) = tempdir("count");
    let writer = RotatingFile::builder(&dir)
        .rotation(Rotation::Never)
        .max_bytes(300)
        .max_files(2)
        .flush_policy(FlushPolicy::Fsync)
        .build()
        .unwrap();
    let auditor = Auditor::builder()
        .batch_size(1)
        .writer(writer)
        .build()
        .unwrap();
    emit(&auditor, 8);
    auditor.shutdown().await;
    let names: Vec<String> = lines(&dir).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 3, "two rotated and the active file: {names:?}");
}

#[test]
fn a_crash_mid_rotation_is_finished_at_start() {
    let (_guard, dir) = tempdir("crash");
    // A crash after the rename, before compression; and one during a compression.
    let rotated = dir.join("audit-20260101T000000.000000Z.jsonl");
    std::fs::write(&rotated, "{\"id\":\"a\"}\n{\"id\":\"b\"}\n").unwrap();
    std::fs::write(
        dir.join("audit-20251231T000000.000000Z.jsonl.gz.tmp"),
        b"partial garbage",
    )
    .unwrap();
    std::fs::write(
        dir.join("audit-20251231T000000.000000Z.jsonl"),
        "{\"id\":\"z\"}\n",
    )
    .unwrap();
    RotatingFile::builder(&dir).build().unwrap();
    let all = lines(&dir);
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "audit-20251231T000000.000000Z.jsonl.gz",
            "audit-20260101T000000.000000Z.jsonl.gz"
        ]
    );
    assert_eq!(ids(&all), ["z", "a", "b"]);
    assert!(RotatingFile::builder(&dir).prefix("a/b").build().is_err());
}

/// Where [`a_write_the_disk_cuts_short_leaves_whole_lines`] runs its writer: set only in the
/// child process it starts.
const FULL_DISK_DIR: &str = "OAUTH_AUDIT_TEST_FULL_DISK_DIR";

fn events(n: usize) -> Vec<Arc<AuditEvent>> {
    let service = Arc::new(oauth_audit::event::ServiceInfo::new("api"));
    (0..n)
        .map(|_| {
            Arc::new(AuditEvent::new(
                service.clone(),
                Timestamp::now(),
                EventKind::ResourceAccessed,
                Outcome::Success,
            ))
        })
        .collect()
}

/// The writer's half of [`a_write_the_disk_cuts_short_leaves_whole_lines`]: a no-op unless
/// run as its child, under a file size limit.
#[tokio::test]
async fn full_disk_child() {
    use oauth_audit::writer::AuditWriter;
    let Some(dir) = std::env::var_os(FULL_DISK_DIR) else {
        return;
    };
    let mut writer = RotatingFile::builder(PathBuf::from(dir))
        .rotation(Rotation::Never)
        .flush_policy(FlushPolicy::EveryBatch)
        .build()
        .unwrap();
    writer.write(&events(2)).await.unwrap();
    // Far past the limit: the kernel writes what fits, then refuses the rest (EFBIG).
    assert!(writer.write(&events(200)).await.is_err());
}

/// A write the disk cuts short (full, or here past the file size limit) leaves no torn line
/// behind for the batch's retry to follow.
#[cfg(unix)]
#[test]
fn a_write_the_disk_cuts_short_leaves_whole_lines() {
    let (_guard, dir) = tempdir("full");
    // Files of a few KiB at most.
    full_disk::run_child_under_file_size_limit("full_disk_child", 8, FULL_DISK_DIR, &dir);
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    assert!(
        text.ends_with('\n'),
        "a torn line is left: ...{:?}",
        &text[text.len().saturating_sub(40)..]
    );
    let all = lines(&dir);
    assert_eq!(ids(&all).len(), 2, "only the first batch");
}

/// Where [`a_write_cut_short_after_a_copytruncate_leaves_none_of_its_lines`] runs its writer:
/// set only in the child process it starts.
const TRUNCATED_FULL_DISK_DIR: &str = "OAUTH_AUDIT_TEST_TRUNCATED_FULL_DISK_DIR";

/// The writer's half of [`a_write_cut_short_after_a_copytruncate_leaves_none_of_its_lines`]:
/// a no-op unless run as its child, under a file size limit.
#[tokio::test]
async fn truncated_full_disk_child() {
    use oauth_audit::writer::AuditWriter;
    let Some(dir) = std::env::var_os(TRUNCATED_FULL_DISK_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let mut writer = RotatingFile::builder(&dir)
        .rotation(Rotation::Never)
        .flush_policy(FlushPolicy::EveryBatch)
        .build()
        .unwrap();
    writer.write(&events(4)).await.unwrap();
    // logrotate's `copytruncate`: the active file is emptied under the writer.
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("audit.jsonl"))
        .unwrap()
        .set_len(0)
        .unwrap();
    // Far past the limit: the kernel writes what fits, then refuses the rest (EFBIG).
    assert!(writer.write(&events(200)).await.is_err());
}

/// A write the disk cuts short in a file truncated since the writer's last write (logrotate's
/// `copytruncate`) is cut back to where it began in the file as it is, not to the length the
/// writer counted: none of the failed batch, which is retried, stays behind.
#[cfg(unix)]
#[test]
fn a_write_cut_short_after_a_copytruncate_leaves_none_of_its_lines() {
    let (_guard, dir) = tempdir("truncated-full");
    // Files of a few KiB at most.
    full_disk::run_child_under_file_size_limit(
        "truncated_full_disk_child",
        8,
        TRUNCATED_FULL_DISK_DIR,
        &dir,
    );
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    assert!(
        text.is_empty(),
        "lines of the failed batch are left: {} bytes",
        text.len()
    );
}

#[tokio::test]
async fn a_writer_leaves_the_files_of_a_longer_prefix_alone() {
    let (_guard, dir) = tempdir("prefixes");
    // Another writer's files in the same directory: its active file, a rotated one and a
    // compression in progress.
    let others = [
        "audit-chain.jsonl",
        "audit-chain-20250101T000000.000000Z.jsonl.gz",
        "audit-chain-20250101T000000.000000Z.jsonl.gz.tmp",
    ];
    for name in others {
        std::fs::write(dir.join(name), "{\"id\":\"other\"}\n").unwrap();
    }
    let writer = RotatingFile::builder(&dir)
        .rotation(Rotation::Never)
        .max_bytes(300)
        .max_files(1)
        .retain_for(Duration::from_secs(3600))
        .flush_policy(FlushPolicy::Fsync)
        .build()
        .unwrap();
    let auditor = Auditor::builder()
        .batch_size(1)
        .writer(writer)
        .build()
        .unwrap();
    emit(&auditor, 6);
    auditor.shutdown().await;
    for name in others {
        assert!(dir.join(name).exists(), "{name} was touched");
    }
    let own: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("audit-chain"))
        .collect();
    assert_eq!(
        own.len(),
        3,
        "one rotated file, the active one and the lock: {own:?}"
    );
}

#[tokio::test]
async fn a_directory_and_prefix_have_one_writer_at_a_time() {
    let (_guard, dir) = tempdir("one-writer");
    let first = RotatingFile::builder(&dir).build().unwrap();
    let second = RotatingFile::builder(&dir).build().unwrap_err();
    assert!(
        second.to_string().contains("held by another writer"),
        "{second}"
    );
    // Another prefix in the same directory is another writer's.
    RotatingFile::builder(&dir).prefix("other").build().unwrap();
    drop(first);
    RotatingFile::builder(&dir).build().unwrap();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_created_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for (configured, expected_file, expected_dir) in
        [(None, 0o600, 0o700), (Some(0o640), 0o640, 0o750)]
    {
        let (_guard, parent) = tempdir("mode");
        let dir = parent.join("audit");
        let mut builder = RotatingFile::builder(&dir)
            .rotation(Rotation::Never)
            .max_bytes(1_000)
            .flush_policy(FlushPolicy::EveryBatch);
        if let Some(m) = configured {
            builder = builder.file_mode(m);
        }
        let auditor = Auditor::builder()
            .batch_size(4)
            .writer(builder.build().unwrap())
            .build()
            .unwrap();
        emit(&auditor, 30);
        auditor.shutdown().await;
        assert_eq!(mode(&dir), expected_dir, "directory");
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(files.len() > 2, "rotated and active files: {files:?}");
        for file in files {
            assert_eq!(mode(&file), expected_file, "{}", file.display());
        }
    }
    assert!(RotatingFile::builder(tempdir("bad-mode").1)
        .file_mode(0o200)
        .build()
        .is_err());
}

/// A symbolic link planted where the active file should be is not followed: the file it
/// points to stays as it was, the writes fail (and are retried), and once the link is gone
/// the events land in the writer's own file, none lost.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbolic_link_in_place_of_the_active_file_is_not_followed() {
    use oauth_audit::delivery::Backoff;
    use oauth_audit::writer::WriterOptions;

    let (_guard, dir) = tempdir("symlink");
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "not an audit file\n").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("audit.jsonl")).unwrap();
    let writer = RotatingFile::builder(&dir)
        .rotation(Rotation::Never)
        .flush_policy(FlushPolicy::EveryBatch)
        .build()
        .unwrap();
    let auditor = Auditor::builder()
        .writer_with(
            writer,
            // Few attempts while the link is there: the memory backlog gives up after 10.
            WriterOptions::default().retry(Backoff::exponential(
                Duration::from_millis(20),
                Duration::from_millis(100),
            )),
        )
        .build()
        .unwrap();
    let sent = emit(&auditor, 5);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "not an audit file\n",
        "the link's target is never written"
    );
    assert_eq!(auditor.stats().writers[0].written, 0);
    assert_eq!(auditor.stats().writers[0].dropped, 0);

    std::fs::remove_file(dir.join("audit.jsonl")).unwrap();
    for _ in 0..200 {
        if auditor.stats().writers[0].written == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    auditor.shutdown().await;
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    let all = vec![(
        "audit.jsonl".to_owned(),
        text.lines().map(str::to_owned).collect(),
    )];
    assert_eq!(ids(&all), sent, "every event once, in order");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "not an audit file\n"
    );
}

/// A rotated file's name that is a symbolic link (planted before a restart) is not read into
/// a compressed file: recovery refuses it instead of copying the link's target into the trail.
#[cfg(unix)]
#[test]
fn a_symbolic_link_named_like_a_rotated_file_is_not_compressed() {
    let (_guard, dir) = tempdir("symlink-rotated");
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "someone else's data\n").unwrap();
    std::os::unix::fs::symlink(&secret, dir.join("audit-20260101T000000.000000Z.jsonl")).unwrap();
    let error = RotatingFile::builder(&dir).build().unwrap_err();
    assert!(error.to_string().contains("symbolic link"), "{error}");
    assert!(
        !dir.join("audit-20260101T000000.000000Z.jsonl.gz").exists(),
        "nothing was compressed"
    );
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "someone else's data\n"
    );
}

/// The user the tests run as, from a file it just created.
#[cfg(unix)]
fn own_uid(dir: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    let probe = dir.join("uid-probe");
    std::fs::write(&probe, "").unwrap();
    let uid = std::fs::metadata(&probe).unwrap().uid();
    std::fs::remove_file(&probe).unwrap();
    uid
}

/// A hard link planted where a rotation's temporary file goes, to another file the
/// process's user owns, is refused before anything is written into it, and that file is not
/// emptied either: the temporary file is truncated only once it is known to be the trail's.
#[cfg(unix)]
#[tokio::test]
async fn a_hard_link_in_place_of_the_temporary_file_is_neither_truncated_nor_written() {
    use oauth_audit::writer::AuditWriter as _;

    let (_guard, dir) = tempdir("hardlink");
    let victim = dir.join("authorized_keys");
    std::fs::write(&victim, "ssh-ed25519 AAAA operator\n").unwrap();
    let clock = Clock::at(2026, 1, 1, 12);
    let mut writer = RotatingFile::builder(&dir)
        .rotation(Rotation::Never)
        .max_bytes(1)
        .compress(true)
        .flush_policy(FlushPolicy::EveryBatch)
        .clock(clock.reader())
        .build()
        .unwrap();
    writer.write(&[one_event()]).await.unwrap();

    // The next write rotates (max_bytes): at the clock's time, so the name is known.
    let tmp = dir.join("audit-20260101T120000.000000Z.jsonl.gz.tmp");
    std::fs::hard_link(&victim, &tmp).unwrap();
    let error = writer.write(&[one_event()]).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&tmp.display().to_string()) && message.contains("has 2 links"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "ssh-ed25519 AAAA operator\n"
    );
}

fn one_event() -> Arc<AuditEvent> {
    Arc::new(AuditEvent::new(
        Arc::new(Default::default()),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    ))
}

/// Files someone else pre-created where the writer's files go (who could then read or alter
/// the trail written into them) are refused with an error that names the file and its owner:
/// the lock file and a rotated file left to compress (at start), the active file (at the
/// first write), and the temporary file a rotation compresses into. Each is written once the
/// process owns it. (The tests run as root, which can give a file away: uid 65534.)
#[cfg(unix)]
#[tokio::test]
async fn files_someone_else_owns_in_the_directory_are_refused() {
    use oauth_audit::writer::AuditWriter as _;

    let (_guard, dir) = tempdir("owner");
    let uid = own_uid(&dir);
    let give = |path: &Path, to: u32| std::os::unix::fs::chown(path, Some(to), None).unwrap();
    let refused = |error: &dyn std::fmt::Display, path: &Path| {
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()) && message.contains("uid 65534"),
            "{message}"
        );
    };

    let lock = dir.join("audit.lock");
    std::fs::write(&lock, "").unwrap();
    give(&lock, 65534);
    let error = RotatingFile::builder(&dir).build().unwrap_err();
    refused(&error, &lock);
    give(&lock, uid);

    let rotated = dir.join("audit-20260101T000000.000000Z.jsonl");
    std::fs::write(&rotated, "{\"forged\":true}\n").unwrap();
    give(&rotated, 65534);
    let error = RotatingFile::builder(&dir).build().unwrap_err();
    refused(&error, &rotated);
    assert!(
        !dir.join("audit-20260101T000000.000000Z.jsonl.gz").exists(),
        "nothing was compressed into the trail"
    );
    std::fs::remove_file(&rotated).unwrap();

    let active = dir.join("audit.jsonl");
    std::fs::write(&active, "").unwrap();
    give(&active, 65534);
    let clock = Clock::at(2026, 1, 1, 12);
    let mut writer = RotatingFile::builder(&dir)
        .rotation(Rotation::Never)
        .max_bytes(1)
        .compress(true)
        .flush_policy(FlushPolicy::EveryBatch)
        .clock(clock.reader())
        .build()
        .unwrap();
    let error = writer.write(&[one_event()]).await.unwrap_err();
    refused(&error, &active);
    assert_eq!(
        std::fs::read_to_string(&active).unwrap(),
        "",
        "nothing written"
    );
    give(&active, uid);
    writer.write(&[one_event()]).await.unwrap();

    // The next write rotates (max_bytes): at the clock's time, so the name is known.
    let tmp = dir.join("audit-20260101T120000.000000Z.jsonl.gz.tmp");
    std::fs::write(&tmp, "").unwrap();
    give(&tmp, 65534);
    let error = writer.write(&[one_event()]).await.unwrap_err();
    refused(&error, &tmp);
    assert_eq!(
        std::fs::read(&tmp).unwrap(),
        b"",
        "the trail is not compressed into it"
    );
}

/// A rotated file retention cannot delete (an operator's legal hold, `chattr +i`; here a
/// directory in its place, which `unlink` refuses too) stays, and costs no event: neither
/// the writer's start nor the write that rotates fails for it.
#[tokio::test]
async fn a_rotated_file_retention_cannot_delete_loses_no_event() {
    use oauth_audit::writer::AuditWriter as _;

    let (_guard, dir) = tempdir("held");
    let held = dir.join("audit-20000101T000000.000000Z.jsonl.gz");
    std::fs::create_dir(&held).unwrap();
    std::fs::write(held.join("kept"), "").unwrap();
    // One rotated file more than max_files: retention at start wants the held one gone.
    let mut older = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut older, b"").unwrap();
    std::fs::write(
        dir.join("audit-20000102T000000.000000Z.jsonl.gz"),
        older.finish().unwrap(),
    )
    .unwrap();

    let mut writer = RotatingFile::builder(&dir)
        .rotation(Rotation::Never)
        .max_bytes(1)
        .max_files(1)
        .flush_policy(FlushPolicy::EveryBatch)
        .build()
        .expect("retention that cannot delete a file does not stop the writer");
    // Every write after the first rotates, and retention runs again.
    let mut written = Vec::new();
    for _ in 0..4 {
        let event = one_event();
        written.push(event.id.to_string());
        writer
            .write(&[event])
            .await
            .expect("the write that rotates");
    }
    writer.flush().await.unwrap();
    drop(writer);

    assert!(held.is_dir(), "the held file is left alone");
    std::fs::remove_dir_all(&held).unwrap();
    let all = lines(&dir);
    let found = ids(&all);
    for id in &written {
        assert!(found.contains(id), "event {id} lost: {all:?}");
    }
}
