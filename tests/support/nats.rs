//! Real `nats-server` processes with JetStream for the NATS backend tests: a single server
//! that can be stopped and started again on the same port and store, and a 3-node cluster
//! on loopback. Every server runs in its own temp dir and is killed on Drop.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// How long a server may take to accept clients and have JetStream ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The `nats-server` binary, or a panic that says how to get it.
pub fn nats_server_binary() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|dir| dir.join("nats-server"));
    for candidate in candidates {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "nats-server is not installed: the NATS tests need a real server. Run scripts/test \
         (it installs the Debian package nats-server), or `apt-get install nats-server`."
    );
}

pub use super::ports::free_port;

/// A number no other server of this process has.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// One `nats-server` process (started from arguments or a config file), its log in `dir`.
struct Process {
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    fn new(args: Vec<String>, log: PathBuf) -> Self {
        Process {
            args,
            log,
            child: None,
        }
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "nats-server is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(nats_server_binary())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start nats-server");
        self.child = Some(child);
    }

    /// Kills the server at once (like a crash or a power cut).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until JetStream on `url` answers an account info request, and checks that the
/// server answering is `server_name`, not another test's server on the same port. A server
/// whose log says its port was taken (bound by a test running in parallel after the port
/// was handed out) is given up at once: the error is its log.
async fn wait_for_jetstream(
    url: &str,
    server_name: &str,
    what: &str,
    log_tail: impl Fn() -> String,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        let attempt = async {
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(2))
                .request_timeout(Some(Duration::from_secs(2)))
                .connect(url)
                .await
                .map_err(|err| err.to_string())?;
            let answering = client.server_info().server_name;
            assert_eq!(
                answering,
                server_name,
                "{what} on {url} is answered by another server: the port is taken\n\
                 --- server log ---\n{}",
                log_tail()
            );
            // Raw JSON: the typed account info of async-nats expects fields of newer servers.
            let reply = client
                .request("$JS.API.INFO", Vec::new().into())
                .await
                .map_err(|err| err.to_string())?;
            let info: serde_json::Value =
                serde_json::from_slice(&reply.payload).map_err(|err| err.to_string())?;
            match info.get("error") {
                None => Ok(()),
                Some(error) => Err(format!("JetStream not ready: {error}")),
            }
        };
        let last_error = match attempt.await {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        let log = log_tail();
        if log.contains("address already in use") {
            return Err(log);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not get JetStream ready within {READY_TIMEOUT:?}: {last_error}\n\
             --- server log ---\n{}",
            log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A single `nats-server -js` on a free loopback port.
pub struct NatsServer {
    port: u16,
    name: String,
    process: Process,
    dir: TempDir,
}

impl NatsServer {
    /// Starts a server and waits until JetStream is ready.
    pub async fn start() -> Self {
        Self::launch("standalone", |name, port, store| {
            vec![
                "--server_name".to_owned(),
                name.to_owned(),
                "-js".to_owned(),
                "-a".to_owned(),
                "127.0.0.1".to_owned(),
                "-p".to_owned(),
                port.to_string(),
                "-sd".to_owned(),
                store.display().to_string(),
            ]
        })
        .await
    }

    /// Starts a server from a config file holding `extra` (accounts, limits) besides the
    /// name, address and JetStream store; clients without credentials must still get
    /// JetStream (give `no_auth_user` with accounts).
    pub async fn start_with_config(extra: &str) -> Self {
        Self::launch("configured", |name, port, store| {
            let config = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n{extra}\n",
                store.display().to_string()
            );
            let path = store.with_file_name("nats-server.conf");
            std::fs::write(&path, config).unwrap();
            vec!["-c".to_owned(), path.display().to_string()]
        })
        .await
    }

    /// Starts a server with the arguments `args` gives for its name, port and store
    /// directory, and waits until JetStream is ready. A port taken before the server bound
    /// it is replaced by another.
    async fn launch(kind: &str, args: impl Fn(&str, u16, &Path) -> Vec<String>) -> Self {
        let mut taken = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let store = dir.path().join("jetstream");
            // Unique to this server: another test run on the machine may start one on the
            // same port, and the name tells whose answers.
            let name = format!("{kind}-{port}-{}-{}", std::process::id(), unique());
            let process = Process::new(
                args(&name, port, &store),
                dir.path().join("nats-server.log"),
            );
            let mut server = NatsServer {
                port,
                name,
                process,
                dir,
            };
            match server.try_restart().await {
                Ok(()) => return server,
                Err(log) => taken = log,
            }
        }
        panic!("nats-server found its port taken five times in a row\n--- server log ---\n{taken}");
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The directory holding the store and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server; its store stays for [`restart`](Self::restart).
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same port and store, and waits until it is ready.
    pub async fn restart(&mut self) {
        if let Err(log) = self.try_restart().await {
            panic!(
                "nats-server lost its port {}\n--- server log ---\n{log}",
                self.port
            );
        }
    }

    async fn try_restart(&mut self) -> Result<(), String> {
        self.process.spawn();
        let url = self.url();
        let ready =
            wait_for_jetstream(&url, &self.name, "nats-server", || self.process.log_tail()).await;
        if ready.is_err() {
            self.process.kill();
        }
        ready
    }

    /// Whether the server process runs.
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }
}

/// A JetStream cluster of 3 `nats-server`s on loopback.
pub struct NatsCluster {
    nodes: Vec<ClusterNode>,
    _dir: TempDir,
}

struct ClusterNode {
    client_port: u16,
    process: Process,
}

impl NatsCluster {
    /// Starts 3 nodes and waits until each has JetStream ready (a meta leader is elected).
    pub async fn start() -> Self {
        const NODES: usize = 3;
        let dir = tempfile::tempdir().unwrap();
        let client_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let cluster_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let mut nodes = Vec::with_capacity(NODES);
        for i in 0..NODES {
            let node_dir = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            // Routes go one per line: a space-separated list is a parse error.
            let mut routes = String::new();
            for (j, port) in cluster_ports.iter().enumerate() {
                if j != i {
                    writeln!(routes, "    nats-route://127.0.0.1:{port}").unwrap();
                }
            }
            let config = format!(
                "server_name: n{i}\n\
                 listen: 127.0.0.1:{client}\n\
                 jetstream {{\n  store_dir: \"{store}\"\n}}\n\
                 cluster {{\n  name: audit\n  listen: 127.0.0.1:{cluster}\n  routes: [\n{routes}  ]\n}}\n",
                client = client_ports[i],
                cluster = cluster_ports[i],
                store = node_dir.join("jetstream").display(),
            );
            let config_path = node_dir.join("nats-server.conf");
            std::fs::write(&config_path, config).unwrap();
            let process = Process::new(
                vec!["-c".to_owned(), config_path.display().to_string()],
                node_dir.join("nats-server.log"),
            );
            nodes.push(ClusterNode {
                client_port: client_ports[i],
                process,
            });
        }
        for node in &mut nodes {
            node.process.spawn();
        }
        let cluster = NatsCluster { nodes, _dir: dir };
        for i in 0..NODES {
            cluster.wait_ready(i).await;
        }
        cluster
    }

    async fn wait_ready(&self, node: usize) {
        let url = self.url(node);
        let name = format!("n{node}");
        let what = format!("cluster node {name}");
        if let Err(logs) = wait_for_jetstream(&url, &name, &what, || self.log_tails()).await {
            panic!("{what}: a port was taken\n{logs}");
        }
    }

    fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| format!("--- n{i} ---\n{}", node.process.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The client URL of one node.
    pub fn url(&self, node: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[node].client_port)
    }

    /// The client URLs of all nodes.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.url(i)).collect()
    }

    /// Kills one node.
    pub fn stop(&mut self, node: usize) {
        self.nodes[node].process.kill();
    }

    /// Starts a stopped node again (same ports and store) and waits until it is ready.
    pub async fn restart(&mut self, node: usize) {
        self.nodes[node].process.spawn();
        self.wait_ready(node).await;
    }
}
