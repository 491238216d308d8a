//! TLS for the PostgreSQL backend: libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey`,
//! on rustls with the aws-lc-rs provider.
//!
//! tokio-postgres knows `sslmode` `disable`, `prefer` and `require` only, and no certificate
//! files, so these options are taken out of the connection string before it parses the rest.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::ConfigError;

const SETTING: &str = "postgres connection string";

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TlsMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, plain TCP otherwise.
    Prefer,
    /// TLS or no connection.
    Require,
    /// TLS with a server certificate signed by a trusted CA.
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host connected to.
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Result<TlsMode, ConfigError> {
        Ok(match value {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => {
                return Err(ConfigError::invalid(
                    SETTING,
                    format!(
                        "sslmode {other:?} is not one of disable, prefer, require, verify-ca, \
                         verify-full (allow and sslmode-less defaults of libpq aside, prefer is \
                         the default)"
                    ),
                ))
            }
        })
    }

    /// The mode tokio-postgres negotiates with; certificates are checked by our verifier.
    pub(super) fn negotiation(self) -> SslMode {
        match self {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        }
    }
}

/// `sslrootcert`: a PEM file, or `system` for the operating system's store (as in libpq 16).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RootCert {
    File(PathBuf),
    System,
}

/// The TLS options of a connection string, as written.
#[doc(hidden)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `sslmode`.
    pub mode: Option<String>,
    /// `sslrootcert`.
    pub root_cert: Option<String>,
    /// `sslcert`.
    pub cert: Option<String>,
    /// `sslkey`.
    pub key: Option<String>,
}

const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

impl TlsOptions {
    fn set(&mut self, key: &str, value: String) {
        // As in libpq, a repeated key's last value wins.
        match key {
            "sslmode" => self.mode = Some(value),
            "sslrootcert" => self.root_cert = Some(value),
            "sslcert" => self.cert = Some(value),
            _ => self.key = Some(value),
        }
    }
}

/// Splits the TLS options out of a libpq connection string (`key=value ...` or a
/// `postgres://` URL) and returns what is left for tokio-postgres, other options unchanged.
///
/// A string this cannot split (an unterminated quote, a key without `=`) is returned whole,
/// for tokio-postgres to report.
#[doc(hidden)]
pub fn split_tls_options(connection: &str) -> (Cow<'_, str>, TlsOptions) {
    let mut options = TlsOptions::default();
    let rest = match url_body(connection) {
        Some(body) => split_url(connection, body, &mut options),
        None => split_key_values(connection, &mut options),
    };
    match rest {
        Some(rest) => (rest, options),
        None => (Cow::Borrowed(connection), TlsOptions::default()),
    }
}

fn url_body(connection: &str) -> Option<usize> {
    ["postgres://", "postgresql://"]
        .iter()
        .find(|prefix| connection.starts_with(*prefix))
        .map(|prefix| prefix.len())
}

/// As tokio-postgres: everything up to the first `@` is credentials, the query is what
/// follows the next `?`, its pairs separated by `&` and percent-encoded.
fn split_url<'a>(
    connection: &'a str,
    body: usize,
    options: &mut TlsOptions,
) -> Option<Cow<'a, str>> {
    let after_credentials = connection[body..]
        .find('@')
        .map_or(body, |at| body + at + 1);
    let Some(question) = connection[after_credentials..].find('?') else {
        return Some(Cow::Borrowed(connection));
    };
    let query_start = after_credentials + question + 1;
    let mut kept: Vec<&str> = Vec::new();
    let mut removed = false;
    for pair in connection[query_start..].split('&') {
        let (key, value) = pair.split_once('=')?;
        let key = percent_encoding::percent_decode_str(key)
            .decode_utf8()
            .ok()?;
        if TLS_KEYS.contains(&key.as_ref()) {
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .ok()?;
            options.set(&key, value.into_owned());
            removed = true;
        } else {
            kept.push(pair);
        }
    }
    if !removed {
        return Some(Cow::Borrowed(connection));
    }
    let mut rest = connection[..query_start - 1].to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Some(Cow::Owned(rest))
}

/// As tokio-postgres: `key = value` pairs separated by whitespace, a value either
/// `'quoted'` or bare, with `\` escaping the next character in both.
fn split_key_values<'a>(connection: &'a str, options: &mut TlsOptions) -> Option<Cow<'a, str>> {
    let mut rest = String::with_capacity(connection.len());
    let mut removed = false;
    let mut chars = connection.char_indices().peekable();
    let mut copied_to = 0;
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(pair_start, _)) = chars.peek() else {
            break;
        };
        let mut key_end = pair_start;
        while let Some((i, c)) = chars.next_if(|(_, c)| !c.is_whitespace() && *c != '=') {
            key_end = i + c.len_utf8();
        }
        let key = &connection[pair_start..key_end];
        if key.is_empty() {
            // tokio-postgres stops at a `=` where a key should be.
            break;
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        chars.next_if(|(_, c)| *c == '=')?;
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let quoted = chars.next_if(|(_, c)| *c == '\'').is_some();
        loop {
            match chars.peek() {
                None if quoted => return None,
                None => break,
                Some(&(_, '\'')) if quoted => {
                    chars.next();
                    break;
                }
                Some(&(_, c)) if !quoted && c.is_whitespace() => break,
                Some(_) => {}
            }
            if let Some((_, c)) = chars.next() {
                if c == '\\' {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        if !quoted && value.is_empty() {
            return None;
        }
        if TLS_KEYS.contains(&key) {
            rest.push_str(&connection[copied_to..pair_start]);
            while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
            copied_to = chars.peek().map_or(connection.len(), |&(i, _)| i);
            options.set(key, value);
            removed = true;
        }
    }
    if !removed {
        return Some(Cow::Borrowed(connection));
    }
    rest.push_str(&connection[copied_to..]);
    Some(Cow::Owned(rest))
}

/// What the backend connects with: the negotiated mode and, unless TLS is off, a connector.
pub(super) struct Tls {
    pub(super) mode: TlsMode,
    pub(super) connector: Option<MakeRustlsConnect>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("mode", &self.mode).finish()
    }
}

impl Tls {
    /// Checks the options and reads the certificate files (at build time, so a missing or
    /// unreadable file is a configuration error, not a retried delivery failure).
    pub(super) fn from_options(options: &TlsOptions) -> Result<Tls, ConfigError> {
        let root = options.root_cert.as_deref().map(|root| match root {
            "system" => RootCert::System,
            file => RootCert::File(PathBuf::from(file)),
        });
        let mode = match options.mode.as_deref() {
            Some(mode) => TlsMode::parse(mode)?,
            // libpq 16: system roots only make sense with host names checked.
            None if root == Some(RootCert::System) => TlsMode::VerifyFull,
            None => TlsMode::Prefer,
        };
        if mode == TlsMode::Disable {
            return Ok(Tls {
                mode,
                connector: None,
            });
        }
        if root == Some(RootCert::System) && mode != TlsMode::VerifyFull {
            return Err(ConfigError::invalid(
                SETTING,
                "sslrootcert=system needs sslmode=verify-full: any public CA can sign a \
                 certificate for some host, so the host name must be checked too",
            ));
        }
        if matches!(mode, TlsMode::VerifyCa | TlsMode::VerifyFull) && root.is_none() {
            return Err(ConfigError::invalid(
                SETTING,
                "sslmode=verify-ca and verify-full need sslrootcert: the CA certificate file \
                 (PEM) that signed the server's certificate, or sslrootcert=system",
            ));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| ConfigError::invalid(SETTING, format!("TLS: {error}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = match &root {
            None => Arc::new(EncryptOnly(provider)),
            Some(root) => {
                let roots = Arc::new(root_store(root)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|error| ConfigError::invalid(SETTING, format!("TLS: {error}")))?;
                if mode == TlsMode::VerifyFull {
                    webpki
                } else {
                    // libpq checks the chain whenever a root is given, the name only with
                    // verify-full.
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&options.cert, &options.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = read_certificates("sslcert", Path::new(cert))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|error| {
                    ConfigError::invalid(SETTING, format!("sslkey {key}: {error}"))
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|error| {
                    ConfigError::invalid(SETTING, format!("sslcert and sslkey: {error}"))
                })?
            }
            _ => {
                return Err(ConfigError::invalid(
                    SETTING,
                    "sslcert and sslkey go together (a client certificate and its key, PEM)",
                ))
            }
        };
        Ok(Tls {
            mode,
            connector: Some(MakeRustlsConnect::new(config)),
        })
    }
}

fn read_certificates(
    option: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| {
            ConfigError::invalid(SETTING, format!("{option} {}: {error}", path.display()))
        })?;
    if certificates.is_empty() {
        return Err(ConfigError::invalid(
            SETTING,
            format!("{option} {}: no PEM certificate in it", path.display()),
        ));
    }
    Ok(certificates)
}

fn root_store(root: &RootCert) -> Result<RootCertStore, ConfigError> {
    let mut store = RootCertStore::empty();
    match root {
        RootCert::File(path) => {
            for certificate in read_certificates("sslrootcert", path)? {
                store.add(certificate).map_err(|error| {
                    ConfigError::invalid(
                        SETTING,
                        format!("sslrootcert {}: {error}", path.display()),
                    )
                })?;
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(ConfigError::invalid(
                    SETTING,
                    "sslrootcert=system: no CA certificate found in the system's store",
                ));
            }
        }
    }
    Ok(store)
}

/// `verify-ca`, and `prefer`/`require` with a root: the chain is checked, not the name.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki checks the name last, after the chain, so this error means the chain held.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a root, as in libpq: encrypted, but any certificate is
/// accepted, so an active attacker on the path is not kept out.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(connection: &str) -> (String, TlsOptions) {
        let (rest, options) = split_tls_options(connection);
        (rest.into_owned(), options)
    }

    #[test]
    fn key_value_strings_lose_only_their_tls_options() {
        let (rest, options) = split(
            "host=db port=5432 sslmode=verify-full sslrootcert='/etc/ca dir/ca.pem' \
             password='a b\\'c' sslcert = /c.pem sslkey=/k\\ ey.pem user=audit",
        );
        assert_eq!(rest, "host=db port=5432 password='a b\\'c' user=audit");
        assert_eq!(options.mode.as_deref(), Some("verify-full"));
        assert_eq!(options.root_cert.as_deref(), Some("/etc/ca dir/ca.pem"));
        assert_eq!(options.cert.as_deref(), Some("/c.pem"));
        assert_eq!(options.key.as_deref(), Some("/k ey.pem"));
        // Untouched strings are handed on as they are.
        let plain = "host=db user=audit password='x y'";
        assert!(matches!(split_tls_options(plain).0, Cow::Borrowed(s) if s == plain));
        // Strings that do not parse are left for tokio-postgres to report.
        assert_eq!(split("sslmode='require").0, "sslmode='require");
        assert_eq!(split("sslmode").1, TlsOptions::default());
    }

    #[test]
    fn urls_lose_only_their_tls_options() {
        let (rest, options) = split(
            "postgres://audit:p%3Fw@db:5432/audit?sslmode=verify-ca&application_name=x&sslrootcert=%2Fca%20dir%2Fca.pem",
        );
        assert_eq!(
            rest,
            "postgres://audit:p%3Fw@db:5432/audit?application_name=x"
        );
        assert_eq!(options.mode.as_deref(), Some("verify-ca"));
        assert_eq!(options.root_cert.as_deref(), Some("/ca dir/ca.pem"));
        let (rest, options) = split("postgresql://db/audit?sslmode=require");
        assert_eq!(rest, "postgresql://db/audit");
        assert_eq!(options.mode.as_deref(), Some("require"));
        // A `?` in the password is not the query.
        let (rest, options) = split("postgres://u:a?sslmode=disable@db/x?sslmode=require");
        assert_eq!(rest, "postgres://u:a?sslmode=disable@db/x");
        assert_eq!(options.mode.as_deref(), Some("require"));
    }

    /// Keys a connection string may hold: the TLS ones and some tokio-postgres takes.
    const KEYS: [&str; 8] = [
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "host",
        "user",
        "dbname",
        "application_name",
    ];

    fn pairs() -> impl proptest::strategy::Strategy<Value = Vec<(usize, String)>> {
        proptest::collection::vec((0..KEYS.len(), "[ -~]{1,12}"), 0..8)
    }

    /// A libpq key-value string: values quoted, `\` and `'` escaped.
    fn key_values(pairs: &[(usize, String)], keep: impl Fn(&str) -> bool) -> String {
        pairs
            .iter()
            .filter(|(key, _)| keep(KEYS[*key]))
            .map(|(key, value)| {
                let value = value.replace('\\', "\\\\").replace('\'', "\\'");
                format!("{}='{value}'", KEYS[*key])
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn url(pairs: &[(usize, String)], keep: impl Fn(&str) -> bool) -> String {
        let query: Vec<String> = pairs
            .iter()
            .filter(|(key, _)| keep(KEYS[*key]) && KEYS[*key] != "host")
            .map(|(key, value)| {
                let value = percent_encoding::utf8_percent_encode(
                    value,
                    percent_encoding::NON_ALPHANUMERIC,
                );
                format!("{}={value}", KEYS[*key])
            })
            .collect();
        if query.is_empty() {
            "postgres://audit@db/audit".to_owned()
        } else {
            format!("postgres://audit@db/audit?{}", query.join("&"))
        }
    }

    /// The TLS options the pairs set: the last value of each key, as libpq reads them.
    fn model(pairs: &[(usize, String)], url: bool) -> TlsOptions {
        let mut options = TlsOptions::default();
        for (key, value) in pairs {
            if TLS_KEYS.contains(&KEYS[*key]) && !(url && KEYS[*key] == "host") {
                options.set(KEYS[*key], value.clone());
            }
        }
        options
    }

    fn parsed(connection: &str) -> String {
        use std::str::FromStr;
        match tokio_postgres::Config::from_str(connection) {
            Ok(config) => format!("{config:?}"),
            Err(error) => format!("error: {error}"),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(256))]

        /// Any input: no panic, the rest is no longer than the input, and splitting the rest
        /// again changes nothing.
        #[test]
        fn splitting_is_total_and_idempotent(connection in "\\PC{0,80}") {
            let (rest, _) = split_tls_options(&connection);
            proptest::prop_assert!(rest.len() <= connection.len());
            let (again, options) = split_tls_options(&rest);
            proptest::prop_assert_eq!(again.as_ref(), rest.as_ref());
            proptest::prop_assert_eq!(options, TlsOptions::default());
        }

        /// Well-formed strings: the options are the model's, and tokio-postgres reads the rest
        /// exactly as it reads the string written without the TLS options.
        #[test]
        fn splitting_agrees_with_libpq_syntax(pairs in pairs()) {
            let is_other = |key: &str| !TLS_KEYS.contains(&key);
            for (connection, without, is_url) in [
                (key_values(&pairs, |_| true), key_values(&pairs, is_other), false),
                (url(&pairs, |_| true), url(&pairs, is_other), true),
            ] {
                let (rest, options) = split_tls_options(&connection);
                proptest::prop_assert_eq!(&options, &model(&pairs, is_url), "{}", connection);
                proptest::prop_assert_eq!(parsed(&rest), parsed(&without), "{}", connection);
            }
        }
    }

    #[test]
    fn modes_need_what_they_check_against() {
        let options = |mode: &str, root: Option<&str>| TlsOptions {
            mode: Some(mode.to_owned()),
            root_cert: root.map(str::to_owned),
            ..TlsOptions::default()
        };
        for mode in ["verify-ca", "verify-full"] {
            let error = Tls::from_options(&options(mode, None))
                .unwrap_err()
                .to_string();
            assert!(error.contains("sslrootcert"), "{error}");
        }
        let error = Tls::from_options(&options("require", Some("system")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("verify-full"), "{error}");
        let error = Tls::from_options(&options("verify-full", Some("/nonexistent/ca.pem")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
        let error = Tls::from_options(&options("always", None))
            .unwrap_err()
            .to_string();
        assert!(error.contains("verify-full"), "{error}");
        let half = TlsOptions {
            cert: Some("/c.pem".into()),
            ..TlsOptions::default()
        };
        assert!(Tls::from_options(&half).is_err());
        assert_eq!(
            Tls::from_options(&options("require", None)).unwrap().mode,
            TlsMode::Require
        );
        assert!(Tls::from_options(&options("disable", None))
            .unwrap()
            .connector
            .is_none());
    }
}
