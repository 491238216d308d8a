//! A real PostgreSQL 15 server for tests: a fresh cluster in a temp dir on a free loopback
//! port, stopped (and its directory removed) on Drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The superuser `initdb` creates; connections need no password (`--auth=trust`).
pub const USER: &str = "audit";

pub struct PgServer {
    dir: PathBuf,
    port: u16,
    running: bool,
}

impl PgServer {
    /// Creates a cluster and starts it. Panics with instructions when PostgreSQL 15 is
    /// missing.
    pub fn new() -> PgServer {
        let mut server = PgServer::init();
        server.first_start();
        server
    }

    /// A server with `ssl = on`, its certificate from a throwaway CA, valid for `localhost`
    /// only (not for `127.0.0.1`, so that `verify-ca` and `verify-full` differ). The role
    /// `tls_client` must log in with a client certificate from the same CA.
    pub fn with_tls() -> (PgServer, PgTls) {
        let mut server = PgServer::init();
        let tls = PgTls::generate(&server.dir.join("client"));
        let data = server.dir.join("data");
        std::fs::write(data.join("server.crt"), &tls.server_pem).unwrap();
        std::fs::write(data.join("server.key"), &tls.server_key_pem).unwrap();
        std::fs::write(data.join("ca.crt"), std::fs::read(&tls.ca).unwrap()).unwrap();
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str(
            "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'\n",
        );
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        let hba = std::fs::read_to_string(data.join("pg_hba.conf")).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            format!("hostssl all tls_client 127.0.0.1/32 cert\nhost all tls_client 127.0.0.1/32 reject\n{hba}"),
        )
        .unwrap();
        if is_root() {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(&data));
        }
        run(Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key")));
        server.first_start();
        (server, tls)
    }

    fn init() -> PgServer {
        assert!(
            Path::new(BIN).join("postgres").exists(),
            "PostgreSQL 15 is not installed ({BIN}/postgres is missing): run scripts/test, \
             which installs it (apt-get install postgresql)"
        );
        let dir = std::env::temp_dir().join(format!("oauth-audit-pg-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            // initdb refuses to run as root; the cluster belongs to the postgres user.
            run(Command::new("chown").arg("postgres:postgres").arg(&dir));
        }
        let data = dir.join("data");
        run_as_postgres(&format!(
            "{BIN}/initdb -D '{}' -U {USER} --auth=trust --no-sync -E UTF8 --locale=C.UTF-8",
            data.display()
        ));
        PgServer {
            dir,
            port: super::ports::free_port(),
            running: false,
        }
    }

    /// The libpq connection string for the `postgres` database.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname=postgres sslmode=disable",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server abruptly (as a crash or a failover would), keeping its data.
    pub fn stop(&mut self) {
        if self.running {
            run_as_postgres(&format!(
                "{BIN}/pg_ctl -D '{}' -m immediate -w stop",
                self.dir.join("data").display()
            ));
            self.running = false;
        }
    }

    /// Starts the server again: same data, same port.
    pub fn start(&mut self) {
        if self.running {
            return;
        }
        if let Err(failure) = self.launch() {
            panic!("{failure}");
        }
    }

    /// The cluster's first start. Its port was free when it was handed out, but a test
    /// running in parallel may bind it (as port 0) before the server does; the server then
    /// stops at once, and gets another port.
    fn first_start(&mut self) {
        for _ in 0..5 {
            match self.launch() {
                Ok(()) => return,
                Err(failure) if failure.contains("Address already in use") => {
                    self.port = super::ports::free_port();
                }
                Err(failure) => panic!("{failure}"),
            }
        }
        panic!("PostgreSQL found its port taken five times in a row");
    }

    /// Runs `pg_ctl start`; on failure, what it printed and what the server logged.
    fn launch(&mut self) -> Result<(), String> {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let logged_before = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        let script = format!(
            "{BIN}/pg_ctl -D '{data}' -l '{log}' -w -t 60 -o \"-p {port} -c listen_addresses=127.0.0.1 \
             -k '{socket}' -c fsync=off -c full_page_writes=off\" start",
            data = data.display(),
            log = log.display(),
            port = self.port,
            socket = self.dir.display(),
        );
        let out = as_postgres(&script);
        if !out.status.success() {
            let logged = self.log();
            return Err(format!(
                "`{script}` failed: {}{}\nserver log:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                logged.get(logged_before..).unwrap_or(&logged)
            ));
        }
        self.running = true;
        Ok(())
    }

    /// A plain client for assertions, connected as `role` (trusted, no password).
    pub async fn client_as(&self, role: &str) -> tokio_postgres::Client {
        let url = self
            .url()
            .replace(&format!("user={USER} "), &format!("user={role} "));
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }

    /// A plain client for assertions (not the backend under test).
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }

    /// The server log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let stopped = as_postgres(&format!(
                "{BIN}/pg_ctl -D '{}' -m immediate -w stop",
                self.dir.join("data").display()
            ));
            if !stopped.status.success() {
                // pg_ctl could not stop it: kill the postmaster, whose children follow.
                if let Ok(pid) = std::fs::read_to_string(self.dir.join("data/postmaster.pid")) {
                    if let Some(pid) = pid.lines().next() {
                        let _ = Command::new("kill").args(["-9", pid]).status();
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn as_postgres(script: &str) -> Output {
    let mut command = if is_root() {
        let mut c = Command::new("su");
        c.args(["postgres", "-s", "/bin/sh", "-c", script]);
        c
    } else {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script]);
        c
    };
    command.current_dir("/").output().unwrap()
}

fn run_as_postgres(script: &str) {
    let out = as_postgres(script);
    assert!(
        out.status.success(),
        "`{script}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(command: &mut Command) {
    let status = command.status().unwrap();
    assert!(status.success(), "{command:?} failed");
}

/// The files of [`PgServer::with_tls`]: PEM paths a connection string can name.
pub struct PgTls {
    /// The CA that signed the server's and the client's certificates.
    pub ca: PathBuf,
    /// Another CA, which signed nothing the server presents.
    pub other_ca: PathBuf,
    /// A certificate for the role `tls_client`, and its key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    server_pem: String,
    server_key_pem: String,
}

impl PgTls {
    fn generate(dir: &Path) -> PgTls {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        let new_ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
        };
        let ca = new_ca("oauth-audit test CA");
        let other_ca = new_ca("some other CA");

        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server_params.signed_by(&server_key, &ca).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "tls_client");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &ca).unwrap();

        std::fs::create_dir_all(dir).unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        PgTls {
            ca: write("ca.pem", ca.pem()),
            other_ca: write("other-ca.pem", other_ca.pem()),
            client_cert: write("client.pem", client.pem()),
            client_key: write("client.key", client_key.serialize_pem()),
            server_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
        }
    }
}
