//! The certified OpenID provider `oidc-provider` (npm), run with Node on a free loopback port.
//! `scripts/test` installs it into `cli/tests/oidc/node_modules`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use serde_json::Value;

use super::WAIT;

/// A running provider, stopped on drop.
pub struct OidcProvider {
    child: Child,
    /// `http://127.0.0.1:PORT`, also its issuer.
    pub issuer: String,
    /// A refresh token for client `app` and user `alice`, minted at start.
    pub refresh_token: String,
    /// Three more, each of its own grant.
    pub refresh_tokens: Vec<String>,
}

impl OidcProvider {
    /// Starts the provider on a free port. A port handed out as free can be bound by a test
    /// running in parallel before Node binds it; Node then exits before it is ready, and the
    /// provider is started again on another port.
    pub fn start() -> OidcProvider {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider/package.json").exists(),
            "oidc-provider is not installed in {}: run scripts/test (it runs `npm ci` there), \
             or `npm ci --prefix cli/tests/oidc`",
            dir.display()
        );
        for _ in 0..5 {
            if let Some(provider) = OidcProvider::launch(&dir) {
                return provider;
            }
        }
        panic!("oidc-provider exited before it was ready five times in a row (its output is above)")
    }

    /// `None` when Node exited before the provider was ready.
    fn launch(dir: &std::path::Path) -> Option<OidcProvider> {
        let port = super::ports::free_port();
        let mut child = Command::new("node")
            .arg("server.js")
            .arg(port.to_string())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run node ({e}): run scripts/test, which installs Node.js and oidc-provider")
            });
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("{\"ready\"") {
                    let _ = tx.send(line);
                } else {
                    eprintln!("[oidc-provider] {line}");
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let line = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("oidc-provider did not start on port {port}")
            }
        };
        let ready: Value = serde_json::from_str(&line).expect("ready line is JSON");
        Some(OidcProvider {
            child,
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            refresh_token: ready["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
            refresh_tokens: ready["refresh_tokens"]
                .as_array()
                .expect("refresh_tokens")
                .iter()
                .map(|t| t.as_str().expect("a refresh token").to_owned())
                .collect(),
        })
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
