//! `oauth-audit spool status` and `spool replay` on spools made by the real sink code: a
//! NATS writer whose server is down spools; the status says what waits; a replay while the
//! server is still down gives up and keeps everything; with the server back, the replay
//! delivers every event (the spooled bytes, deduplicated by id) to the real nats-server and
//! leaves the spool empty; a replay is refused while a running process holds the spool.

#[path = "../../tests/support/nats.rs"]
#[allow(dead_code)]
mod nats;
use support::ports;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use oauth_audit::backend::NatsBackend;
use oauth_audit::delivery::{Backoff, Delivery, DeliveryStats};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
use oauth_audit::writer::Auditor;
use serde_json::Value;
use support::{run, TempDir, WAIT};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `oauth-audit ARGS` off the test's runtime.
async fn cli(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args, &[])
    })
    .await
    .unwrap();
    eprintln!("[oauth-audit] {}", text(&output.stderr));
    output
}

/// A NATS writer to `url` with its spool in `spool`, as the proxy builds one.
fn nats_writer(url: &str, spool: &Path) -> (Auditor, DeliveryStats) {
    let backend = NatsBackend::builder([url])
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let delivery = Delivery::builder(backend)
        .spool_dir(spool)
        .backoff(Backoff::exponential(
            Duration::from_millis(50),
            Duration::from_millis(200),
        ))
        .build()
        .unwrap();
    let stats = delivery.stats();
    let auditor = Auditor::builder()
        .service_name("orders-api")
        .writer(delivery)
        .build()
        .unwrap();
    (auditor, stats)
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The spool's segment lines, in order.
fn spooled_lines(spool: &Path) -> Vec<String> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches(".jsonl")
                .bytes()
                .all(|b| b.is_ascii_digit())
                && p.extension().is_some_and(|e| e == "jsonl")
        })
        .collect();
    segments.sort();
    segments
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn config(dir: &TempDir, url: &str, spool: &Path) -> PathBuf {
    dir.write(
        "oauth-audit.toml",
        &format!(
            r#"
service_name = "orders-api"

[[writer]]
type = "jsonl"
path = "{}"

[[writer]]
type = "nats"
servers = ["{url}"]
timeout = "2s"
[writer.delivery]
spool_dir = "{}"
retry_initial = "50ms"
retry_max = "200ms"
"#,
            dir.path("audit.jsonl").display(),
            spool.display()
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_made_while_nats_was_down_is_shown_and_drained_by_hand() {
    let mut server = nats::NatsServer::start().await;
    let url = server.url();
    server.stop();
    let dir = TempDir::new("spool-replay");
    let spools = dir.path("spool");
    let spool = spools.join("nats");

    // The writer cannot reach its server: every event goes to the spool.
    let (auditor, stats) = nats_writer(&url, &spool);
    let service = Arc::new(ServiceInfo::new("orders-api"));
    let mut times = Vec::new();
    for i in 0..25 {
        let time = Timestamp::from_unix(1_800_000_000 + i).unwrap();
        times.push(time.to_string());
        let mut event = AuditEvent::new(
            service.clone(),
            time,
            EventKind::AccessTokenIssued,
            Outcome::Success,
        );
        event.actor.subject = Some(format!("user-{i}"));
        auditor.emit(event);
    }
    wait_until("25 events spooled", || stats.spooled_events() == 25).await;
    // Another writer's spool beside it, empty.
    let (other, _) = nats_writer(&url, &spools.join("backup"));

    // While the writers run, the spools are in use.
    let out = cli(&["spool", "status", spools.to_str().unwrap(), "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = status["spools"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{status}");
    assert_eq!(list[0]["name"], "backup");
    assert_eq!(list[0]["events"], 0);
    assert_eq!(list[1]["name"], "nats");
    assert_eq!(list[1]["events"], 25);
    assert_eq!(list[1]["oldest"], times[0].as_str());
    assert_eq!(list[1]["newest"], times[24].as_str());
    assert_eq!(list[1]["in_use"], true);
    let lines = spooled_lines(&spool);
    assert_eq!(lines.len(), 25);
    let bytes: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
    assert_eq!(list[1]["bytes"], bytes);
    assert!(list[1]["disk_bytes"].as_u64().unwrap() >= bytes);

    // A running writer's spool is not replayed by hand.
    let toml = config(&dir, &url, &spool);
    let out = cli(&[
        "spool",
        "replay",
        spool.to_str().unwrap(),
        "--config",
        toml.to_str().unwrap(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is in use by a running process"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(spooled_lines(&spool), lines, "the spool is untouched");

    auditor.shutdown().await;
    other.shutdown().await;
    drop((auditor, other));
    let human = cli(&["spool", "status", spools.to_str().unwrap()]).await;
    let human = text(&human.stdout);
    assert!(
        human.contains(&format!(
            "nats: 25 event(s) waiting ({}",
            indicatif::HumanBytes(bytes)
        )) && human.contains(&format!(
            "oldest {}, newest {}; not in use",
            times[0], times[24]
        )),
        "{human}"
    );
    assert!(human.contains("total: 25 event(s) waiting"), "{human}");

    // The server still down: the replay gives up and keeps every event.
    let out = cli(&[
        "spool",
        "replay",
        spool.to_str().unwrap(),
        "--config",
        toml.to_str().unwrap(),
        "--give-up-after",
        "1s",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            "25 event(s) waiting, 0 delivered, 0 rejected by the destination, 25 left in the spool"
        ),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).contains("they stay in the spool"));
    assert_eq!(spooled_lines(&spool), lines);

    // The server back: everything is delivered and the spool is empty.
    server.restart().await;
    let out = cli(&[
        "spool",
        "replay",
        spool.to_str().unwrap(),
        "--config",
        toml.to_str().unwrap(),
        "--json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let replayed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcome = &replayed["replayed"][0];
    assert_eq!(outcome["writer"], "nats");
    assert_eq!(outcome["waiting"], 25);
    assert_eq!(outcome["delivered"], 25);
    assert_eq!(outcome["left"], 0);
    assert_eq!(
        replayed["replayed"].as_array().unwrap().len(),
        1,
        "only that writer"
    );
    assert!(
        !dir.path("audit.jsonl").exists(),
        "the configuration's other writer was not built"
    );

    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    let mut stream = js.get_stream("OAUTH_AUDIT").await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!(state.messages, 25);
    for (sequence, line) in (state.first_sequence..=state.last_sequence).zip(&lines) {
        let message = stream.get_raw_message(sequence).await.unwrap();
        assert_eq!(text(&message.payload), *line, "the spooled bytes, in order");
        let event: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            message
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_owned()),
            event["id"].as_str().map(str::to_owned)
        );
    }

    let out = cli(&["spool", "status", spool.to_str().unwrap(), "--json"]).await;
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["spools"][0]["events"], 0);
    assert_eq!(status["spools"][0]["segments"], 0);
    assert!(status["spools"][0].get("oldest").is_none());
    assert!(spooled_lines(&spool).is_empty());
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let dir = TempDir::new("spool-usage");
    let out = cli(&["spool", "status", dir.0.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no spool here"),
        "{}",
        text(&out.stderr)
    );

    // A spool no writer of the configuration names.
    let spool = dir.path("spool");
    let (auditor, _) = nats_writer("nats://127.0.0.1:1", &spool);
    auditor.shutdown().await;
    drop(auditor);
    let toml = dir.write(
        "oauth-audit.toml",
        "[[writer]]\ntype = \"jsonl\"\npath = \"-\"\n",
    );
    let out = cli(&[
        "spool",
        "replay",
        spool.to_str().unwrap(),
        "--config",
        toml.to_str().unwrap(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("keeps its spool in")
            && text(&out.stderr).contains("none has a spool_dir"),
        "{}",
        text(&out.stderr)
    );
}

/// A directory of spools replayed with a configuration that names only some of them (a
/// writer since removed, renamed, or in another file): the events of the others are not
/// called replayed, the command says where they wait and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_no_writer_names_is_reported_and_not_called_replayed() {
    let dir = TempDir::new("spool-unnamed");
    let spools = dir.path("spool");
    let url = "nats://127.0.0.1:1";
    let named = spools.join("nats");
    let unnamed = spools.join("old-nats");
    let (auditor, _) = nats_writer(url, &named);
    let (orphan, stats) = nats_writer(url, &unnamed);
    let service = Arc::new(ServiceInfo::new("orders-api"));
    for i in 0..3 {
        orphan.emit(AuditEvent::new(
            service.clone(),
            Timestamp::from_unix(1_800_000_000 + i).unwrap(),
            EventKind::AccessTokenIssued,
            Outcome::Success,
        ));
    }
    wait_until("3 events spooled", || stats.spooled_events() == 3).await;
    auditor.shutdown().await;
    orphan.shutdown().await;
    drop((auditor, orphan));

    let toml = config(&dir, url, &named);
    let out = cli(&[
        "spool",
        "replay",
        spools.to_str().unwrap(),
        "--config",
        toml.to_str().unwrap(),
        "--give-up-after",
        "1s",
    ])
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: no [[writer]]", unnamed.display()))
            && stderr.contains("3 event(s)"),
        "{stderr}"
    );
    assert_eq!(spooled_lines(&unnamed).len(), 3, "left as they were");
}

/// A file of the spool that is a symbolic link (planted by whoever can create files in the
/// spool directory) is read through by neither `spool status` nor `spool replay`, as the
/// spool itself refuses it: the command fails and names the file, and the link's target is
/// not taken for the spool's cursor, lock, quarantine or a segment.
#[cfg(unix)]
#[tokio::test]
async fn spool_status_refuses_a_symbolic_link_in_the_spool() {
    let dir = TempDir::new("spool-links");
    let victim = dir.write("victim.txt", "7 0\n{\"not\":\"an event\"}\n");
    let toml = |spool: &Path| {
        dir.write(
            "oauth-audit.toml",
            &format!(
                "[[writer]]\ntype = \"nats\"\nservers = [\"nats://127.0.0.1:1\"]\n\
                 [writer.delivery]\nspool_dir = {:?}\n",
                spool.to_str().unwrap()
            ),
        )
    };
    for (n, name) in [
        "cursor",
        "quarantine.jsonl",
        "lock",
        "00000000000000000007.jsonl",
    ]
    .into_iter()
    .enumerate()
    {
        let spool = dir.path(&format!("spool-{n}"));
        let (auditor, _) = nats_writer("nats://127.0.0.1:1", &spool);
        auditor.shutdown().await;
        drop(auditor);
        let planted = spool.join(name);
        let _ = std::fs::remove_file(&planted);
        std::os::unix::fs::symlink(&victim, &planted).unwrap();

        let out = cli(&["spool", "status", spool.to_str().unwrap()]).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("{} is a symbolic link", planted.display())),
            "{name}: {stderr}"
        );

        let config = toml(&spool);
        let out = cli(&[
            "spool",
            "replay",
            spool.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--give-up-after",
            "1s",
        ])
        .await;
        let stderr = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("{} is a symbolic link", planted.display())),
            "{name}: {stderr}"
        );
    }
}
