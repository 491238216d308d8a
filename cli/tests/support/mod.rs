//! Test harness: the real `oauth-audit` binary as a child process, its events, temp dirs.

#![allow(dead_code)]

pub mod oidc;
#[path = "../../../tests/support/ports.rs"]
pub mod ports;
pub mod upstream;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous: the machine is small and shared.
pub const WAIT: Duration = Duration::from_secs(60);

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_oauth-audit")
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("oauth-audit-cli-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write temp file");
        path
    }
}

/// The proxy in front of `upstream` (a URL) with a JSON-lines writer to `out` that would not
/// flush on its own for an hour: only the graceful shutdown writes its events. Its
/// configuration file goes in `dir`.
pub fn proxy_flushing_at_shutdown(
    upstream: &str,
    dir: &TempDir,
    out: &Path,
    env: &[(&str, &str)],
) -> Proxy {
    let config = dir.write(
        "proxy.toml",
        &format!(
            "[queue]\nflush_linger = \"1h\"\n[[writer]]\ntype = \"jsonl\"\npath = {:?}\n",
            out.to_str().unwrap()
        ),
    );
    Proxy::start(
        &["--upstream", upstream, "--config", config.to_str().unwrap()],
        env,
    )
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `oauth-audit ARGS` to completion.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary());
    command.args(args).env_remove("OAUTH_AUDIT_LOG");
    clear_env(&mut command);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run oauth-audit")
}

fn clear_env(command: &mut Command) {
    for (key, _) in std::env::vars() {
        if key.starts_with("OAUTH_AUDIT_") {
            command.env_remove(key);
        }
    }
}

/// A running `oauth-audit proxy`, killed on drop.
pub struct Proxy {
    child: Option<Child>,
    pub addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
    /// Lines logged until the proxy was ready, the ready line included.
    early: Vec<String>,
}

impl Proxy {
    /// Starts `oauth-audit proxy --listen 127.0.0.1:0 ARGS` and waits until it listens.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Proxy {
        let mut command = Command::new(binary());
        command
            .arg("proxy")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        clear_env(&mut command);
        command.env("OAUTH_AUDIT_LOG", "info");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start oauth-audit proxy");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[proxy] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line
                        .split_once("listen=")
                        .filter(|_| line.contains("proxy ready"))
                        .and_then(|(_, rest)| rest.split_whitespace().next())
                    {
                        let addr = addr.parse().expect("listen address in the ready line");
                        seen.push(line);
                        break addr;
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    panic!(
                        "the proxy did not become ready (exit: {status:?}); stderr:\n{}",
                        seen.join("\n")
                    );
                }
            }
        };
        Proxy {
            child: Some(child),
            addr,
            stderr: rx,
            early: seen,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("proxy still running").id()
    }

    /// Sends SIGTERM and waits for the process to end.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM")
    }

    /// Sends `SIG<name>` and waits for the process to end.
    pub fn signal(&mut self, name: &str) -> ExitStatus {
        self.send_signal(name);
        self.wait_exit()
    }

    /// Sends `SIG<name>` without waiting.
    pub fn send_signal(&self, name: &str) {
        let child = self.child.as_ref().expect("proxy still running");
        let status = Command::new("kill")
            .args([&format!("-{name}"), &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to end.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("proxy still running");
        wait_exit(&mut child)
    }

    /// The lines the proxy logged since the last look, without waiting for more.
    pub fn logged_so_far(&self) -> Vec<String> {
        let mut lines = self.early.clone();
        lines.extend(self.stderr.try_iter());
        lines
    }

    /// Waits until the proxy logs a line containing `text`, and returns that line.
    pub fn wait_log(&self, text: &str) -> String {
        if let Some(line) = self.early.iter().find(|line| line.contains(text)) {
            return line.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .stderr
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("the proxy never logged {text:?}"),
            }
        }
    }
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the proxy") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the proxy did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The events in a JSON-lines file (complete lines only).
pub fn read_events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("every line is a JSON event"))
        .collect()
}

/// Waits until an event satisfying `pred` is in `path` and returns it.
pub async fn wait_event(path: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(event) = read_events(path).into_iter().find(|e| pred(e)) {
            return event;
        }
        if Instant::now() > deadline {
            panic!(
                "no event {what} in {}; events:\n{}",
                path.display(),
                std::fs::read_to_string(path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Events of `path` whose `http.path` is `p`.
pub fn at_path(p: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["http"]["path"] == p
}

/// A plain HTTP client that does not use any system proxy.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .expect("reqwest client")
}

/// Sends `request`, as written, on a connection of its own to `addr` and returns the whole
/// answer, read until the other side closes the connection.
pub async fn raw_answer(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends `request`, as written, on a connection of its own to `addr` and returns that
/// connection, still open, with the response head as received, read byte by byte so that
/// nothing after it is taken.
pub async fn raw_head(addr: SocketAddr, request: &[u8]) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(WAIT, socket.read(&mut byte))
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(n, 1, "connection closed before the response head ended");
        head.push(byte[0]);
    }
    (socket, String::from_utf8(head).unwrap())
}
