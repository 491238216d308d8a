//! Connecting to NATS from the command line, the same way for every subcommand that reads a
//! JetStream stream (`detect --nats`, `tail --nats`): servers checked one by one, and one
//! way of authenticating, its secrets from the environment (never from the command line,
//! where other users see it).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_nats::{ConnectOptions, Event, ServerAddr};

use crate::Failure;

/// The NATS writer's stream by default (`NatsBackend::builder`).
pub const DEFAULT_STREAM: &str = "OAUTH_AUDIT";
/// The NATS writer's subject prefix by default: events are on `<prefix>.<kind>`.
pub const DEFAULT_SUBJECT_PREFIX: &str = "oauth.audit";

/// The servers, each checked (named by position: an address may carry a password).
pub fn servers(list: &[String]) -> Result<Vec<ServerAddr>, Failure> {
    let list: Vec<&str> = list
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() {
        return Err(Failure::Usage("--nats: no server given".into()));
    }
    list.iter()
        .enumerate()
        .map(|(i, server)| {
            ServerAddr::from_str(server).map_err(|e| {
                Failure::Usage(format!(
                    "--nats: server {} of {}: {e} (expected nats://host:port)",
                    i + 1,
                    list.len()
                ))
            })
        })
        .collect()
}

/// How the client authenticates: one of the writer's ways, secrets from the environment.
pub enum Auth {
    None,
    Token(String),
    UserPassword(String, String),
    NKey(String),
    CredentialsFile(PathBuf),
}

impl Auth {
    /// From `--nats-creds`, `--nats-user` and the OAUTH_AUDIT_NATS_* variables; more than
    /// one way is a configuration error.
    pub fn from_env(creds: Option<&Path>, user: Option<&str>) -> Result<Auth, Failure> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut given = Vec::new();
        if let Some(path) = creds {
            given.push(Auth::CredentialsFile(path.to_owned()));
        }
        if let Some(token) = var("OAUTH_AUDIT_NATS_TOKEN") {
            given.push(Auth::Token(token));
        }
        if let Some(seed) = var("OAUTH_AUDIT_NATS_NKEY") {
            given.push(Auth::NKey(seed));
        }
        match (user, var("OAUTH_AUDIT_NATS_PASSWORD")) {
            (Some(user), Some(password)) => {
                given.push(Auth::UserPassword(user.to_owned(), password))
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(Failure::Config(
                    "--nats-user: set the password in OAUTH_AUDIT_NATS_PASSWORD".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(Failure::Config(
                    "OAUTH_AUDIT_NATS_PASSWORD is set without --nats-user".into(),
                ))
            }
        }
        if given.len() > 1 {
            return Err(Failure::Config(
                "NATS credentials: give one of --nats-creds, OAUTH_AUDIT_NATS_TOKEN, \
                 OAUTH_AUDIT_NATS_NKEY or --nats-user"
                    .into(),
            ));
        }
        Ok(given.pop().unwrap_or(Auth::None))
    }

    async fn options(&self) -> Result<ConnectOptions, Failure> {
        Ok(match self {
            Auth::None => ConnectOptions::new(),
            Auth::Token(token) => ConnectOptions::with_token(token.clone()),
            Auth::UserPassword(user, password) => {
                ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            Auth::NKey(seed) => ConnectOptions::with_nkey(seed.clone()),
            Auth::CredentialsFile(path) => ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| Failure::Config(format!("--nats-creds {}: {e}", path.display())))?,
        })
    }
}

/// Connects as `name`, with these credentials and certificate authorities (which make TLS
/// required), logging the connection's ups and downs; `timeout` bounds connecting and each
/// request.
pub async fn connect(
    servers: Vec<ServerAddr>,
    auth: &Auth,
    ca: Option<&Path>,
    name: &str,
    timeout: Duration,
) -> Result<async_nats::Client, Failure> {
    let mut options = auth
        .options()
        .await?
        .name(name)
        .connection_timeout(timeout)
        .request_timeout(Some(timeout))
        .event_callback(|event| async move {
            match event {
                Event::Connected => tracing::info!("connected to NATS"),
                Event::Disconnected => tracing::warn!("disconnected from NATS, reconnecting"),
                Event::Closed | Event::Draining => tracing::debug!("NATS: {event}"),
                other => tracing::warn!("NATS: {other}"),
            }
        });
    if let Some(ca) = ca {
        // A CA says TLS is wanted: without `require_tls` the client would fall back to a
        // plain connection (and send its credentials in clear) to whoever offers no TLS.
        options = options
            .add_root_certificates(ca.to_owned())
            .require_tls(true);
    }
    options
        .connect(servers)
        .await
        .map_err(|e| Failure::Runtime(format!("cannot connect to NATS: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_checked_one_by_one() {
        let parsed = servers(&["nats://a:1".into(), " b:2 ".into()]).unwrap();
        assert_eq!(parsed.len(), 2);
        let err = servers(&["nats://user:s3cret@a:1x".into()]).unwrap_err();
        assert!(err.to_string().contains("server 1 of 1"), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
