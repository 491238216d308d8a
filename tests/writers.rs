//! Built-in writers: tracing and JSON lines.

#[cfg(unix)]
#[path = "support/full_disk.rs"]
mod full_disk;
mod support;

use std::io::Write;

use oauth_audit::event::{AuditEvent, EventKind, Outcome, Timestamp};
use oauth_audit::writer::{Auditor, FlushPolicy, JsonLines, TracingWriter};
use support::Buffer;

#[tokio::test]
async fn tracing_writer_emits_one_event_per_audit_event_at_the_right_level() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let auditor = Auditor::builder()
        .writer(TracingWriter::new())
        .build()
        .unwrap();
    let ok = AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    );
    let denied = AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::AccessDenied,
        Outcome::Failure,
    );
    let ids = [ok.id.to_string(), denied.id.to_string()];
    auditor.emit(ok);
    auditor.emit(denied);
    // The writer runs on this current-thread runtime, under the default subscriber.
    auditor.shutdown().await;

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &serde_json::Value| l["target"] == TracingWriter::TARGET)
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(lines[0]["fields"]["kind"], "ResourceAccessed");
    assert_eq!(lines[1]["level"], "WARN");
    assert_eq!(lines[1]["fields"]["outcome"], "failure");
    for (line, id) in lines.iter().zip(ids) {
        let event: serde_json::Value =
            serde_json::from_str(line["fields"]["event"].as_str().unwrap()).unwrap();
        assert_eq!(event["id"], id.as_str());
        assert_eq!(event["schema"], "oauth-audit/1");
    }
}

/// Runs two events through a `TracingWriter` and a writer that always fails (whose sink logs
/// a warning), under `filter`; returns the targets of what was logged.
async fn logged_targets(filter: &str) -> Vec<String> {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let auditor = Auditor::builder()
        .writer(TracingWriter::new())
        .writer(Failing)
        .build()
        .unwrap();
    for kind in [EventKind::ResourceAccessed, EventKind::LoginSucceeded] {
        auditor.emit(AuditEvent::new(
            auditor.service().clone(),
            Timestamp::now(),
            kind,
            Outcome::Success,
        ));
    }
    auditor.shutdown().await;
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["target"].to_string())
        .collect()
}

struct Failing;

impl oauth_audit::writer::AuditWriter for Failing {
    fn name(&self) -> &str {
        "failing"
    }

    async fn write(
        &mut self,
        _: &[std::sync::Arc<AuditEvent>],
    ) -> Result<(), oauth_audit::writer::WriteError> {
        Err(oauth_audit::writer::WriteError::backend("always down"))
    }
}

#[tokio::test]
async fn a_filter_quiets_the_diagnostics_and_keeps_the_audit_events() {
    let event_target = format!("{:?}", TracingWriter::TARGET);
    // The crate's diagnostics log under other targets: with the README's first filter the
    // failing sink's warning is there, and the info-level events too.
    let all = logged_targets("oauth_audit=warn,oauth_audit::event=info").await;
    assert_eq!(
        all.iter().filter(|t| **t == event_target).count(),
        2,
        "{all:?}"
    );
    assert!(
        all.iter().any(|t| *t != event_target),
        "no diagnostic: {all:?}"
    );
    // The README's filter for the events alone.
    let events = logged_targets("oauth_audit=off,oauth_audit::event=info").await;
    assert_eq!(events, [event_target.clone(), event_target], "{events:?}");
}

#[tokio::test]
async fn json_lines_file_appends_and_fsyncs() {
    let dir = std::env::temp_dir().join(format!("oauth-audit-jl-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(b"{\"existing\":true}\n")
        .unwrap();
    let writer = JsonLines::file(&path)
        .await
        .unwrap()
        .flush_policy(FlushPolicy::Fsync);
    assert_eq!(writer.path(), Some(path.as_path()));
    let auditor = Auditor::new(writer);
    auditor.emit(AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    ));
    auditor.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "appended, not truncated: {text}");
    assert_eq!(lines[0], "{\"existing\":true}");
    assert!(lines[1].contains("\"kind\":\"ResourceAccessed\""));
    std::fs::remove_dir_all(dir).ok();
}

#[cfg(unix)]
#[tokio::test]
async fn json_lines_files_are_created_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("oauth-audit-jl-mode-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    drop(JsonLines::file(dir.join("default.jsonl")).await.unwrap());
    assert_eq!(mode("default.jsonl"), 0o600);
    drop(
        JsonLines::file_with_mode(dir.join("group.jsonl"), 0o640)
            .await
            .unwrap(),
    );
    assert_eq!(mode("group.jsonl"), 0o640);
    assert!(JsonLines::file_with_mode(dir.join("x.jsonl"), 0o444)
        .await
        .is_err());
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_file_that_cannot_be_opened_is_named_in_the_error() {
    let missing = std::env::temp_dir()
        .join(format!("oauth-audit-no-such-dir-{}", std::process::id()))
        .join("audit.jsonl");
    let error = oauth_audit::writer::JsonLines::file(&missing)
        .await
        .expect_err("a file in a missing directory cannot be opened");
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );
}

/// Where [`a_json_lines_write_the_disk_cuts_short_leaves_whole_lines`] runs its writer: set
/// only in the child process it starts.
const FULL_DISK_PATH: &str = "OAUTH_AUDIT_TEST_FULL_DISK_PATH";

/// The writer's half of [`a_json_lines_write_the_disk_cuts_short_leaves_whole_lines`]: a no-op
/// unless run as its child, under a file size limit.
#[tokio::test]
async fn json_lines_full_disk_child() {
    use oauth_audit::writer::AuditWriter;
    let Some(path) = std::env::var_os(FULL_DISK_PATH) else {
        return;
    };
    let service = std::sync::Arc::new(oauth_audit::event::ServiceInfo::new("api"));
    let events = |n: usize| -> Vec<std::sync::Arc<AuditEvent>> {
        (0..n)
            .map(|_| {
                std::sync::Arc::new(AuditEvent::new(
                    service.clone(),
                    Timestamp::now(),
                    EventKind::ResourceAccessed,
                    Outcome::Success,
                ))
            })
            .collect()
    };
    let mut writer = JsonLines::file(path)
        .await
        .unwrap()
        .flush_policy(FlushPolicy::EveryBatch);
    writer.write(&events(2)).await.unwrap();
    // Far past the limit: the kernel writes what fits, then refuses the rest (EFBIG).
    assert!(writer.write(&events(200)).await.is_err());
}

/// A write the disk cuts short (full, or here past the file size limit) leaves no torn line
/// behind for the batch's retry to follow.
#[cfg(unix)]
#[test]
fn a_json_lines_write_the_disk_cuts_short_leaves_whole_lines() {
    let dir = std::env::temp_dir().join(format!("oauth-audit-jl-full-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    // Files of a few KiB at most.
    full_disk::run_child_under_file_size_limit(
        "json_lines_full_disk_child",
        8,
        FULL_DISK_PATH,
        &path,
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'), "a torn line is left");
    assert_eq!(text.lines().count(), 2, "only the first batch");
    std::fs::remove_dir_all(dir).ok();
}

/// Lines a failing last flush held back at shutdown (here every write fails: `/dev/full`)
/// are lost with the writer: counted as dropped, not only logged.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn lines_a_failing_last_flush_held_back_are_counted_as_dropped() {
    let writer = JsonLines::file("/dev/full").await.unwrap();
    let auditor = Auditor::new(writer);
    for _ in 0..3 {
        auditor.emit(AuditEvent::new(
            auditor.service().clone(),
            Timestamp::now(),
            EventKind::ResourceAccessed,
            Outcome::Success,
        ));
    }
    auditor.shutdown().await;
    let stats = auditor.stats();
    assert_eq!(stats.writers.len(), 1);
    assert_eq!(
        stats.writers[0].dropped, 3,
        "every event accepted is either written or dropped: {stats:?}"
    );
    assert_eq!(
        stats.writers[0].written, 0,
        "and none is counted as both: {stats:?}"
    );
}

/// A symbolic link where the file should be is refused with an error that says so: the file
/// it points to is never appended to.
#[cfg(unix)]
#[tokio::test]
async fn a_json_lines_file_that_is_a_symbolic_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "not an audit file\n").unwrap();
    let link = dir.path().join("audit.jsonl");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let error = JsonLines::file(&link)
        .await
        .expect_err("a symbolic link is not followed");
    assert!(error.to_string().contains("is a symbolic link"), "{error}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "not an audit file\n"
    );
}

/// A JSON-lines file that is a second name (a hard link) of another file the process's user
/// owns, planted by whoever can create files in the log directory, is refused: its owner
/// check would pass, and the trail's lines (user agents, paths) would go into that other
/// file. The error names the file and its link count; the other file is untouched.
#[cfg(unix)]
#[tokio::test]
async fn a_json_lines_file_that_is_a_hard_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("authorized_keys");
    std::fs::write(&victim, "ssh-ed25519 AAAA operator\n").unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::hard_link(&victim, &path).unwrap();

    let error = JsonLines::file(&path)
        .await
        .expect_err("a hard link is refused");
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("has 2 links"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "ssh-ed25519 AAAA operator\n"
    );

    // Its other name gone, the file is the trail's own.
    std::fs::remove_file(&victim).unwrap();
    JsonLines::file(&path).await.unwrap();
}

/// The user the tests run as, from a file it just created (the crate forbids `unsafe`, and
/// `geteuid` is no safe call in the standard library).
#[cfg(unix)]
fn own_uid(dir: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    let probe = dir.join("uid-probe");
    std::fs::write(&probe, "").unwrap();
    let uid = std::fs::metadata(&probe).unwrap().uid();
    std::fs::remove_file(&probe).unwrap();
    uid
}

/// A trail file someone else pre-created in the log directory, who could then read or alter
/// what is written into it, is refused with an error that names the file and its owner; so
/// is the process's own file when its group or others may write it beyond the writer's
/// `mode`. The process's own file, writable as the mode allows, is appended to as before.
/// (The tests run as root, which can give a file away: uid 65534 is `nobody`.)
#[cfg(unix)]
#[tokio::test]
async fn a_json_lines_file_someone_else_owns_or_others_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let uid = own_uid(dir.path());
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, "").unwrap();
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    let error = JsonLines::file(&path)
        .await
        .expect_err("someone else's file is refused");
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("uid 65534"),
        "{message}"
    );

    std::os::unix::fs::chown(&path, Some(uid), None).unwrap();
    let mode = |bits| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bits));
    mode(0o666).unwrap();
    let error = JsonLines::file(&path)
        .await
        .expect_err("a file others may write is refused");
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("writable"),
        "{message}"
    );
    // Group write is what a mode of 0o660 allows; others' write is not.
    assert!(JsonLines::file_with_mode(&path, 0o660).await.is_err());
    mode(0o660).unwrap();
    JsonLines::file_with_mode(&path, 0o660).await.unwrap();
    assert!(JsonLines::file(&path).await.is_err());

    mode(0o644).unwrap();
    let auditor = Auditor::new(JsonLines::file(&path).await.unwrap());
    auditor.emit(AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    ));
    auditor.shutdown().await;
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
}
