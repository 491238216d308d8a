//! TLS with rustls: the listener's certificate, reloaded when its files change, the client
//! certificates it asks for (RFC 8705), and the roots that verify an `https` upstream.
//!
//! Both sides use the aws-lc-rs provider explicitly, the one crypto provider of the
//! workspace, rather than whatever process-wide default another crate may install.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

/// Why a certificate, key or CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read or holds no usable PEM block.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// rustls refused the configuration (a key that does not match its certificate...).
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

fn file_error(path: &Path, problem: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

/// The crypto provider of every TLS configuration the proxy builds.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Every certificate of a PEM file, in order; an error when there is none.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| file_error(path, e))?;
    parse_certificates(&pem).map_err(|problem| file_error(path, problem))
}

/// Every `CERTIFICATE` block of PEM text, in order (other blocks are skipped); an error
/// when there is none or one does not decode.
#[doc(hidden)]
pub fn parse_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certificates.is_empty() {
        return Err("no PEM \"CERTIFICATE\" block".into());
    }
    Ok(certificates)
}

/// The certificate chain of `certificate` with the private key of `key`, checked to match.
#[doc(hidden)]
pub fn load_certified_key(
    certificate: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_certificates(certificate)?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| {
        file_error(
            key,
            format!(
                "does not fit the certificate {}: {e}",
                certificate.display()
            ),
        )
    })
}

/// When a file last changed, as far as reloading is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    /// A file replaced by a rename is another inode, whatever its time and size.
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode,
    })
}

/// The listener's certificate, reloaded when its files change.
///
/// Each handshake compares the files' modification time, size and inode (two `stat` calls) with
/// those of the pair in use, and reads them again only when they differ. Polling at the
/// handshake, rather than a file watcher such as `notify`, needs no background task, sees
/// the symlink swap Kubernetes does when it updates a mounted secret, and makes a renewed
/// certificate take effect for the very next connection. A pair that fails to load (a
/// half-written file, a key that does not match) is logged and the previous pair stays.
#[derive(Debug)]
pub struct ReloadingCertificate {
    certificate: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Current>,
}

#[derive(Debug)]
struct Current {
    stamps: (Option<Stamp>, Option<Stamp>),
    key: Arc<CertifiedKey>,
}

impl ReloadingCertificate {
    /// Loads the pair now: a proxy never starts with a certificate it cannot use.
    pub fn load(certificate: PathBuf, key: PathBuf) -> Result<Self, TlsError> {
        let provider = provider();
        let stamps = (stamp(&certificate), stamp(&key));
        let loaded = load_certified_key(&certificate, &key, &provider)?;
        Ok(ReloadingCertificate {
            certificate,
            key,
            provider,
            current: Mutex::new(Current {
                stamps,
                key: Arc::new(loaded),
            }),
        })
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        let stamps = (stamp(&self.certificate), stamp(&self.key));
        {
            let current = self.current.lock().ok()?;
            if current.stamps == stamps {
                return Some(current.key.clone());
            }
        }
        // Read outside the lock: other handshakes keep the pair in use meanwhile.
        let reloaded = load_certified_key(&self.certificate, &self.key, &self.provider);
        let mut current = self.current.lock().ok()?;
        current.stamps = stamps;
        match reloaded {
            Ok(key) => {
                tracing::info!(certificate = %self.certificate.display(), "TLS certificate reloaded");
                current.key = Arc::new(key);
            }
            Err(err) => {
                tracing::warn!(error = %err, "TLS certificate not reloaded; the previous one stays in use");
            }
        }
        Some(current.key.clone())
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// Whether the listener asks TLS clients for a certificate (RFC 8705 mutual TLS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientCertificates {
    /// Never asked for.
    #[default]
    None,
    /// Asked for; a client without one is served too.
    Optional,
    /// A client without a certificate fails the handshake.
    Required,
}

/// The client certificate settings of the listener.
#[derive(Clone, Debug, Default)]
pub struct ClientAuthSettings {
    /// Whether certificates are asked for.
    pub certificates: ClientCertificates,
    /// Only certificates issued by one of these CAs are accepted; without it, any
    /// certificate whose key signs the handshake is.
    pub ca_file: Option<PathBuf>,
}

/// The listener's TLS configuration: HTTP/2 and HTTP/1.1 by ALPN, client certificates as
/// `client_auth` says.
pub fn server_config(
    certificate: PathBuf,
    key: PathBuf,
    client_auth: &ClientAuthSettings,
) -> Result<ServerConfig, TlsError> {
    let resolver = ReloadingCertificate::load(certificate, key)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let required = client_auth.certificates == ClientCertificates::Required;
    let builder = match (client_auth.certificates, &client_auth.ca_file) {
        (ClientCertificates::None, _) => builder.with_no_client_auth(),
        (_, Some(path)) => {
            let mut roots = RootCertStore::empty();
            for certificate in read_certificates(path)? {
                roots
                    .add(certificate)
                    .map_err(|e| file_error(path, format!("not a usable CA certificate: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| file_error(path, format!("no client CA: {e}")))?,
            )
        }
        (_, None) => builder.with_client_cert_verifier(Arc::new(AnyClientCertificate {
            required,
            algorithms: provider.signature_verification_algorithms,
        })),
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any client certificate, as RFC 8705 §2.2 self-signed certificates need: who
/// may use which certificate is the authorization server's decision, by thumbprint. The
/// handshake's signatures are still verified, so the client holds the certificate's key.
#[derive(Debug)]
struct AnyClientCertificate {
    required: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn client_auth_mandatory(&self) -> bool {
        self.required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        oauth_audit::mtls::ClientCertificate::from_der(end_entity)
            .map(|_| ClientCertVerified::assertion())
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The roots an `https` upstream's certificate is verified against: the certificates of
/// `ca_file`, and the operating system's when `system_roots`.
pub fn client_config(ca_file: Option<&Path>, system_roots: bool) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = ca_file {
        for certificate in read_certificates(path)? {
            roots
                .add(certificate)
                .map_err(|e| file_error(path, format!("not a usable CA certificate: {e}")))?;
        }
    }
    if system_roots {
        let native = rustls_native_certs::load_native_certs();
        for err in &native.errors {
            tracing::warn!(error = %err, "a system root certificate could not be read");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system root certificates");
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BEGIN: &str = "-----BEGIN CERTIFICATE-----\n";
    const END: &str = "\n-----END CERTIFICATE-----\n";

    proptest! {
        /// Any bytes: no panic, and success means at least one certificate, each no larger
        /// than the input.
        #[test]
        fn pem_parsing_never_panics(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(certificates) = parse_certificates(&input) {
                prop_assert!(!certificates.is_empty());
                for certificate in certificates {
                    prop_assert!(certificate.len() <= input.len());
                }
            }
        }

        /// Well-framed blocks of arbitrary content: the parser agrees with a simple model
        /// (one certificate per block, its bytes exactly the block's content).
        #[test]
        fn pem_blocks_decode_to_their_content(
            blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..4),
            noise in "[a-zA-Z ]{0,40}",
        ) {
            use base64::Engine;
            let mut pem = format!("{noise}\n");
            for block in &blocks {
                pem.push_str(BEGIN);
                pem.push_str(&base64::engine::general_purpose::STANDARD.encode(block));
                pem.push_str(END);
            }
            let parsed = parse_certificates(pem.as_bytes()).unwrap();
            let parsed: Vec<&[u8]> = parsed.iter().map(|c| c.as_ref()).collect();
            let expected: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(parsed, expected);
        }
    }

    #[test]
    fn a_key_alone_is_no_certificate() {
        let err =
            parse_certificates(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .unwrap_err();
        assert!(err.contains("no PEM"), "{err}");
    }
}
