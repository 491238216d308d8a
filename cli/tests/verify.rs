//! `oauth-audit keygen` and `oauth-audit verify` as a user runs them: files, modes, exit
//! codes, the text and JSON reports.

mod support;

use std::path::Path;

use oauth_audit::chain::{sign_announcement, Chaining, SigningKey};
use oauth_audit::event::{
    AuditEvent, DropReason, EventKind, Geo, Outcome, ServiceInfo, Source, Timestamp,
};
use oauth_audit::writer::{Auditor, JsonLines};
use serde_json::Value;
use support::{run, TempDir};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A chained trail of 20 events (and a checkpoint every 10) signed with `key`.
fn trail(path: &Path, key: &SigningKey) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let auditor = Auditor::builder()
            .service_name("orders-api")
            .chain(
                Chaining::new()
                    .signing_key(key.clone())
                    .checkpoint_every(10),
            )
            .writer(JsonLines::file(path).await.unwrap())
            .build()
            .unwrap();
        for i in 0..20 {
            let mut event = AuditEvent::new(
                auditor.service().clone(),
                Timestamp::now(),
                EventKind::ResourceAccessed,
                Outcome::Success,
            );
            event.actor.subject = Some(format!("user-{i}"));
            auditor.emit(event);
        }
        auditor.shutdown().await;
    });
}

/// A key that cannot be written whole (here a file size limit of 0, as a full disk would)
/// leaves no file behind, so that the next run is not refused for it.
#[cfg(unix)]
#[test]
fn keygen_leaves_no_half_written_key_behind() {
    let dir = TempDir::new("keygen-full");
    let prefix = dir.path("audit");
    // `ulimit -f 0`: every write to a file fails (EFBIG); SIGXFSZ ignored, as it stays
    // across `exec`, so that the write fails rather than the process being killed.
    let output = std::process::Command::new("bash")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f 0; exec \"$0\" keygen --name orders-api --out \"$1\"",
            support::binary(),
            prefix.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("cannot write"),
        "{}",
        text(&output.stderr)
    );
    assert!(!dir.path("audit.key").exists(), "half a key left behind");
    assert!(!dir.path("audit.pub").exists());
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites() {
    let dir = TempDir::new("keygen");
    let prefix = dir.path("audit");
    let output = run(
        &[
            "keygen",
            "--name",
            "orders-api",
            "--out",
            prefix.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let private = dir.path("audit.key");
    let public = dir.path("audit.pub");
    let key = SigningKey::from_file(&private).unwrap();
    assert_eq!(key.name(), "orders-api");
    let verifying = oauth_audit::chain::VerifyingKey::from_file(&public).unwrap();
    assert_eq!(verifying, key.verifying_key());
    assert!(text(&output.stdout).contains(&verifying.encode()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&private), 0o600);
        assert_eq!(
            mode(&public) & 0o077,
            mode(&public) & 0o044,
            "public: world-readable at most"
        );
    }

    // A second run with the same prefix changes nothing.
    let before = std::fs::read_to_string(&private).unwrap();
    let output = run(
        &[
            "keygen",
            "--name",
            "orders-api",
            "--out",
            prefix.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("refusing to overwrite"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(std::fs::read_to_string(&private).unwrap(), before);
    // Also when only the public half is in the way: no private key is left behind.
    let other = dir.path("other");
    std::fs::write(dir.path("other.pub"), "x").unwrap();
    let output = run(
        &["keygen", "--name", "k", "--out", other.to_str().unwrap()],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(!dir.path("other.key").exists());

    let output = run(
        &[
            "keygen",
            "--name",
            "has space",
            "--out",
            dir.path("bad").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn verify_exits_0_on_a_sound_trail_1_on_tampering_and_2_on_usage_errors() {
    let dir = TempDir::new("verify");
    let key = SigningKey::generate("orders-api").unwrap();
    let public = dir.write("audit.pub", &key.verifying_key().encode());
    let log = dir.path("audit.jsonl");
    trail(&log, &key);
    let (log_arg, key_arg) = (log.to_str().unwrap(), public.to_str().unwrap());

    let output = run(&["verify", log_arg, "--key", key_arg], &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let stdout = text(&output.stdout);
    assert!(
        stdout.ends_with("22 events in 1 stream, 2 checkpoints: no problems, 1 note\n"),
        "{stdout}"
    );
    // Without a key: still 0, and the report says what was not checked.
    let output = run(&["verify", log_arg], &[]);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("signatures not checked"));
    // The key may be given as text too.
    let output = run(
        &["verify", log_arg, "--key", &key.verifying_key().encode()],
        &[],
    );
    assert_eq!(output.status.code(), Some(0));

    // One field of line 5 edited.
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut edited = lines.clone();
    edited[4] = edited[4].replace("user-", "mallory-");
    let edited_log = dir.write("edited.jsonl", &(edited.join("\n") + "\n"));
    let edited_arg = edited_log.to_str().unwrap();
    let output = run(&["verify", edited_arg, "--key", key_arg], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("{edited_arg}:5: edited")),
        "{stdout}"
    );
    assert!(stdout.ends_with("1 problem, 1 note\n"), "{stdout}");

    let output = run(&["verify", edited_arg, "--key", key_arg, "--json"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["events"], 22);
    assert_eq!(report["streams"], 1);
    assert_eq!(report["checkpoints"], 2);
    assert_eq!(report["errors"], 1);
    assert_eq!(report["signatures_checked"], true);
    assert_eq!(report["counts"]["edited"], 1);
    let edited: Vec<&Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "edited")
        .collect();
    assert_eq!(edited.len(), 1);
    assert_eq!(edited[0]["severity"], "error");
    assert_eq!(edited[0]["location"]["file"], edited_arg);
    assert_eq!(edited[0]["location"]["line"], 5);
    assert_eq!(edited[0]["seqs"]["first"], 5);
    assert!(edited[0]["stream"].is_string());

    // Signed by another key: unknown_key, exit 1.
    let other = dir.write(
        "other.pub",
        &SigningKey::generate("orders-api")
            .unwrap()
            .verifying_key()
            .encode(),
    );
    let output = run(&["verify", log_arg, "--key", other.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains("unknown_key"));

    // The first lines gone (retention removed the oldest file): deleted events, unless
    // --trimmed-start says so, which turns only that start into a note.
    let trimmed = dir.write("trimmed.jsonl", &(lines[5..].join("\n") + "\n"));
    let trimmed_arg = trimmed.to_str().unwrap();
    let output = run(&["verify", trimmed_arg, "--key", key_arg], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains(&format!("{trimmed_arg}:1: deleted")));
    let output = run(
        &["verify", trimmed_arg, "--key", key_arg, "--trimmed-start"],
        &[],
    );
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("{trimmed_arg}:1: note: trimmed_start")),
        "{stdout}"
    );
    std::fs::remove_file(&trimmed).unwrap();

    // Events without a chain before the first chained one: inserted, unless
    // --unchained-prefix says that chaining was turned on after them.
    let prefixed = dir.write(
        "prefixed.jsonl",
        &format!("{{\"kind\":\"ResourceAccessed\"}}\n{}\n", lines.join("\n")),
    );
    let prefixed_arg = prefixed.to_str().unwrap();
    let output = run(&["verify", prefixed_arg, "--key", key_arg], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains(&format!("{prefixed_arg}:1: inserted")));
    let output = run(
        &[
            "verify",
            prefixed_arg,
            "--key",
            key_arg,
            "--unchained-prefix",
        ],
        &[],
    );
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("note: unchained_prefix"), "{stdout}");
    std::fs::remove_file(&prefixed).unwrap();

    // A signed drop report of another sink: taken as it is without --sink (it names no
    // number here), an inserted event with it.
    let mut drop = AuditEvent::dropped(
        std::sync::Arc::new(ServiceInfo::default()),
        2,
        DropReason::QueueFull,
        "postgres",
    );
    sign_announcement(&mut drop, &key);
    let foreign = dir.write(
        "foreign.jsonl",
        &format!(
            "{}\n{}\n",
            lines.join("\n"),
            serde_json::to_string(&drop).unwrap()
        ),
    );
    let foreign_arg = foreign.to_str().unwrap();
    let output = run(&["verify", foreign_arg, "--key", key_arg], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    let own_sink = format!("file:{log_arg}");
    let output = run(
        &["verify", foreign_arg, "--key", key_arg, "--sink", &own_sink],
        &[],
    );
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{foreign_arg}:23: inserted: a drop report of sink postgres in the storage of sink {own_sink}"
        )),
        "{stdout}"
    );
    std::fs::remove_file(&foreign).unwrap();

    // An emptied log verifies nothing.
    let empty = dir.write("empty.jsonl", "");
    let output = run(&["verify", empty.to_str().unwrap(), "--key", key_arg], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains("unchained: the input holds no event"));
    std::fs::remove_file(&empty).unwrap();

    // A directory is read as rotated files.
    let output = run(&["verify", dir.0.to_str().unwrap(), "--key", key_arg], &[]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "audit.jsonl and edited.jsonl repeat each other"
    );

    // Usage errors.
    for (args, message) in [
        (vec!["verify"], "no input"),
        (vec!["verify", "/nonexistent/audit.jsonl"], "cannot read"),
        (
            vec!["verify", log_arg, "--key", "/nonexistent/audit.pub"],
            "--key",
        ),
        (vec!["verify", log_arg, "--key", log_arg], "--key"),
        (
            vec!["verify", log_arg, "--checkpoints", "/nonexistent"],
            "--checkpoints",
        ),
        (
            vec![
                "verify",
                "--postgres-url-env",
                "NO_SUCH_VARIABLE_X",
                "--table",
                "t",
            ],
            "NO_SUCH_VARIABLE_X",
        ),
        (vec!["verify", "--table", "t"], "--postgres-url-env"),
    ] {
        let output = run(&args, &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains(message),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
}

/// Coordinates whose shortest decimal form has 17 digits, like any computed `f64`: a parser
/// that is not correctly rounded reads some of them one unit in the last place off, and
/// the event would canonicalise to other bytes than the chain hashed.
#[test]
fn verify_passes_a_trail_with_coordinates_of_full_precision() {
    let dir = TempDir::new("verify-floats");
    let key = SigningKey::generate("orders-api").unwrap();
    let public = dir.write("audit.pub", &key.verifying_key().encode());
    let log = dir.path("audit.jsonl");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let auditor = Auditor::builder()
            .service_name("orders-api")
            .chain(Chaining::new().signing_key(key.clone()))
            .writer(JsonLines::file(&log).await.unwrap())
            .build()
            .unwrap();
        for (lat, lon) in [
            (53.421141769822924, 9.208465264763845),
            (-59.860311361163596, 13.036989444676057),
        ] {
            let mut event = AuditEvent::new(
                auditor.service().clone(),
                Timestamp::now(),
                EventKind::ResourceAccessed,
                Outcome::Success,
            );
            let mut source = Source::default();
            source.geo = Some(Box::new(Geo::at(lat, lon)));
            event.source = Some(source);
            auditor.emit(event);
        }
        auditor.shutdown().await;
    });
    let lines = std::fs::read_to_string(&log).unwrap();
    assert!(lines.contains("53.421141769822924"), "{lines}");
    // The same trail as a tool that reorders keys writes it: every event canonicalised.
    let rewritten: String = lines
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            serde_json::to_string_pretty(&value)
                .unwrap()
                .replace('\n', " ")
                + "\n"
        })
        .collect();
    let rewritten = dir.write("rewritten.jsonl", &rewritten);
    for path in [&log, &rewritten] {
        let output = run(
            &[
                "verify",
                path.to_str().unwrap(),
                "--key",
                public.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    }
}

/// The rotating writer renames `x.jsonl.gz` into place, then removes `x.jsonl`: a crash
/// between the two leaves both in the directory, the same events twice. `verify`, `report`
/// and `detect` read the archive only; read both ways, every event of the file was there
/// twice to the chain.
#[test]
fn verify_reads_a_rotated_file_found_beside_its_archive_once() {
    use std::io::Write as _;

    let dir = TempDir::new("verify-archive");
    let key = SigningKey::generate("orders-api").unwrap();
    let public = dir.write("audit.pub", &key.verifying_key().encode());
    let trail_dir = dir.path("trail");
    std::fs::create_dir(&trail_dir).unwrap();
    let rotated = trail_dir.join("audit-20261207T000000Z.jsonl");
    trail(&rotated, &key);
    let mut archive = flate2::write::GzEncoder::new(
        std::fs::File::create(trail_dir.join("audit-20261207T000000Z.jsonl.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    archive
        .write_all(&std::fs::read(&rotated).unwrap())
        .unwrap();
    archive.finish().unwrap();

    let output = run(
        &[
            "verify",
            trail_dir.to_str().unwrap(),
            "--key",
            public.to_str().unwrap(),
        ],
        &[],
    );
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.ends_with("22 events in 1 stream, 2 checkpoints: no problems, 1 note\n"),
        "{stdout}"
    );
}
