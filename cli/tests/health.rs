//! The proxy's probes on its metrics address: `/healthz` while it serves, `/readyz` only
//! while the upstream answers and every writer keeps up, `/metrics` beside them.

mod support;

use support::upstream::Upstream;
use support::{http, Proxy, TempDir, WAIT};

fn free_addr() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], support::ports::free_port()))
}

async fn get(url: &str) -> (u16, String) {
    let response = http().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Asks `url` until it answers `status` (the probes read live state), and returns the body.
async fn until(url: &str, status: u16) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (got, body) = get(url).await;
        if got == status {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} stayed {got}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn readiness_follows_the_upstream_and_liveness_does_not() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("health");
    let out = dir.path("audit.jsonl");
    let admin = free_addr();
    let proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--out",
            out.to_str().unwrap(),
            "--metrics-listen",
            &admin.to_string(),
        ],
        &[],
    );
    assert_eq!(
        get(&format!("http://{admin}/healthz")).await,
        (200, "ok\n".into())
    );
    assert_eq!(
        get(&format!("http://{admin}/readyz")).await,
        (200, "ready\n".into())
    );
    let (status, metrics) = get(&format!("http://{admin}/metrics")).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("# HELP oauth_audit_events_total"),
        "{metrics}"
    );
    assert_eq!(get(&format!("http://{admin}/nowhere")).await.0, 404);
    // The probes are not audited: they are not the proxied service's traffic.
    let response = http().get(proxy.url("/echo")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    // The upstream goes away: not ready (naming it), still alive.
    let upstream_url = upstream.url();
    drop(upstream);
    let body = until(&format!("http://{admin}/readyz"), 503).await;
    let authority = upstream_url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    assert!(body.contains(&format!("upstream {authority}")), "{body}");
    assert_eq!(get(&format!("http://{admin}/healthz")).await.0, 200);
}

#[tokio::test]
async fn a_writer_that_drops_events_makes_the_proxy_unready_until_it_keeps_up() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("health-writer");
    let admin = free_addr();
    // A disk that is full: every write (flushed with its batch) fails, and without retries
    // the batch is dropped.
    let config = dir.write(
        "proxy.toml",
        &format!(
            "[proxy]\nupstream = \"{}\"\nmetrics_listen = \"{admin}\"\n\n[[writer]]\ntype = \"jsonl\"\npath = \"/dev/full\"\nflush = \"every_batch\"\n",
            upstream.url()
        ),
    );
    let proxy = Proxy::start(&["--config", config.to_str().unwrap()], &[]);
    assert_eq!(get(&format!("http://{admin}/readyz")).await.0, 200);
    let response = http().get(proxy.url("/echo")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = until(&format!("http://{admin}/readyz"), 503).await;
    assert!(
        body.contains("writer file:/dev/full: 1 events dropped"),
        "{body}"
    );
    // Nothing dropped since: ready again.
    until(&format!("http://{admin}/readyz"), 200).await;
}

/// Two probers (a kubelet and a load balancer, say) ask for readiness: a drop the first one
/// saw is not taken away from the second, who asks right after.
#[tokio::test]
async fn a_drop_is_seen_by_every_prober_for_a_while() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("health-probers");
    let admin = free_addr();
    let config = dir.write(
        "proxy.toml",
        &format!(
            "[proxy]\nupstream = \"{}\"\nmetrics_listen = \"{admin}\"\n\n[[writer]]\ntype = \"jsonl\"\npath = \"/dev/full\"\nflush = \"every_batch\"\n",
            upstream.url()
        ),
    );
    let proxy = Proxy::start(&["--config", config.to_str().unwrap()], &[]);
    let readyz = format!("http://{admin}/readyz");
    assert_eq!(get(&readyz).await.0, 200);
    let response = http().get(proxy.url("/echo")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let first = until(&readyz, 503).await;
    let (status, second) = get(&readyz).await;
    assert_eq!(status, 503, "the second prober was told: {second}");
    assert_eq!(second, first);
    assert!(
        first.contains("writer file:/dev/full: 1 events dropped in the last 10 s"),
        "{first}"
    );
}

#[tokio::test]
async fn its_own_logs_can_be_json_lines_with_stable_fields() {
    let upstream = Upstream::start().await;
    let mut child = std::process::Command::new(support::binary())
        .args(["proxy", "--log-format", "json", "--listen", "127.0.0.1:0"])
        .args(["--upstream", &upstream.url(), "--out", "-"])
        .env("OAUTH_AUDIT_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let first = lines.next().unwrap().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let line: serde_json::Value = serde_json::from_str(&first).expect(&first);
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["message"], "oauth-audit proxy ready", "{line}");
    assert!(
        line["timestamp"].is_string() && line["target"].is_string(),
        "{line}"
    );
    assert!(
        line["listen"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{line}"
    );
    assert_eq!(
        line["upstream"],
        upstream.url().trim_end_matches('/'),
        "{line}"
    );
}

/// Clock ticks the process `pid` has run on a processor, user and system.
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name, which is in parentheses and may hold spaces.
    let (_, rest) = stat.rsplit_once(')').unwrap();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime: the 14th and 15th fields, counted from the pid.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Out of file descriptors (connections to the metrics address held open), the metrics
/// address waits before it accepts again, as the proxy's own listener does, instead of
/// spinning a processor on the failing accept until a descriptor is free.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_metrics_address_out_of_file_descriptors_backs_off() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("health-fds");
    let out = dir.path("audit.jsonl");
    let admin = free_addr();
    let proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--out",
            out.to_str().unwrap(),
            "--metrics-listen",
            &admin.to_string(),
        ],
        &[],
    );
    let pid = proxy.pid();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = format!("--nofile={}", open + 4);
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &limit])
        .status()
        .expect("run prlimit");
    assert!(status.success());
    // More connections than descriptors left: the rest wait in the backlog, accept fails.
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(tokio::net::TcpStream::connect(admin).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = cpu_ticks(pid);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let used = cpu_ticks(pid) - before;
    // A processor spinning for 2 s is about 200 ticks.
    assert!(used < 40, "{used} ticks in 2 s while out of descriptors");
    drop(held);
    assert_eq!(
        until(&format!("http://{admin}/healthz"), 200).await,
        "ok\n",
        "serves again once descriptors are free"
    );
}

/// A connection to the metrics address that sends no request is closed after a while: such
/// connections, opened by the hundred, would otherwise hold the process's file descriptors
/// for as long as their peer likes.
#[tokio::test]
async fn a_silent_connection_to_the_metrics_address_is_closed() {
    use tokio::io::AsyncReadExt as _;

    let upstream = Upstream::start().await;
    let dir = TempDir::new("health-silent");
    let out = dir.path("audit.jsonl");
    let admin = free_addr();
    let _proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--out",
            out.to_str().unwrap(),
            "--metrics-listen",
            &admin.to_string(),
        ],
        &[],
    );
    let mut silent = tokio::net::TcpStream::connect(admin).await.unwrap();
    let mut buf = [0u8; 64];
    // Closed (a read that ends, with or without a 408 first, or fails) in time.
    let _closed = tokio::time::timeout(std::time::Duration::from_secs(20), silent.read(&mut buf))
        .await
        .expect("the silent connection is still open after 20 s");
    assert_eq!(get(&format!("http://{admin}/healthz")).await.0, 200);
}

/// Whoever can reach the metrics address cannot make the proxy open a connection to the
/// upstream per request: readiness looks at the upstream at most once a second.
#[tokio::test]
async fn readiness_checks_share_one_look_at_the_upstream_a_second() {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = upstream.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    let dir = TempDir::new("health-looks");
    let out = dir.path("audit.jsonl");
    let admin = free_addr();
    let _proxy = Proxy::start(
        &[
            "--upstream",
            &format!("http://{upstream_addr}"),
            "--out",
            out.to_str().unwrap(),
            "--metrics-listen",
            &admin.to_string(),
        ],
        &[],
    );
    until(&format!("http://{admin}/readyz"), 200).await;
    let before = accepted.load(std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    for _ in 0..40 {
        assert_eq!(get(&format!("http://{admin}/readyz")).await.0, 200);
    }
    let looks = accepted.load(std::sync::atomic::Ordering::SeqCst) - before;
    let seconds = started.elapsed().as_secs() as usize;
    assert!(
        looks <= seconds + 2,
        "{looks} connections to the upstream for 40 checks in {seconds} s"
    );
}
