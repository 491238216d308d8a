//! Certificate-bound access tokens and client authentication by mutual TLS (RFC 8705).
//!
//! A token bound to a client certificate names the SHA-256 thumbprint of that certificate
//! (`cnf.x5t#S256`); it is only good over a TLS connection on which the client proved
//! possession of the certificate's key. The audit layer learns the connection's
//! certificate in one of two ways:
//!
//! - the server that terminates TLS inserts a [`ClientCertificate`] into each request's
//!   extensions (`oauth-audit proxy` does, with `[proxy.tls] client_certificates`);
//! - a trusted front proxy passes the certificate in a header named with
//!   [`AuditLayerBuilder::client_certificate_header`](crate::AuditLayerBuilder::client_certificate_header),
//!   read only when the socket peer is one of the
//!   [`trusted_proxies`](crate::AuditLayerBuilder::trusted_proxies).
//!   [`ClientCertificate::from_header_value`] accepts what nginx, Envoy and Traefik write.
//!
//! A protected route's event records `token.binding` with `method: "mtls"`, the token's
//! `x5t#S256` and the [`ProofOutcome`](crate::dpop::ProofOutcome) of the match: `valid`,
//! `missing` (no certificate), `key_mismatch` (another certificate) or `malformed` (a header
//! that holds no certificate). Enforcing [`RequiredScopes`](crate::RequiredScopes) refuse a
//! certificate-bound token without its certificate (`401`, `invalid_token`, RFC 8705 §3).
//!
//! ```
//! use oauth_audit::mtls::ClientCertificate;
//!
//! # use base64::Engine;
//! // A self-signed certificate, as a TLS handshake delivers it (DER).
//! let der = base64::engine::general_purpose::STANDARD.decode(concat!(
//!     "MIIBiTCCAS+gAwIBAgIUCfICdZi1jpeh4ECkf/QuLTirwuswCgYIKoZIzj0EAwIwGTEXMBUGA1UEAwwOY2xp",
//!     "ZW50LmV4YW1wbGUwIBcNMjYxMjAyMTQxOTM0WhgPMjEyNjExMDgxNDE5MzRaMBkxFzAVBgNVBAMMDmNsaWVu",
//!     "dC5leGFtcGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEL7zIqvsJTZly1Cqg35tvyZIbFJbebgJPcHar",
//!     "YDUlmYJfL+VkuwEUvGrPwhY0CkP7vpyMa1pIOT4GO/Kzymu5IaNTMFEwHQYDVR0OBBYEFO4mNsp9dQWmWP1m",
//!     "5CdAKnLikBfEMB8GA1UdIwQYMBaAFO4mNsp9dQWmWP1m5CdAKnLikBfEMA8GA1UdEwEB/wQFMAMBAf8wCgYI",
//!     "KoZIzj0EAwIDSAAwRQIgGSCv3P2//kCyOzJ5ds6ROKw8BQ9RjcFDXROYoRgLkfgCIQCk/TTx6mPD3QtmSMTo",
//!     "Yk8JFAS01JYZ0JcwRuurarDL3w==",
//! ))?;
//! // What a TLS terminator does with it.
//! let certificate = ClientCertificate::from_der(&der)?;
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(certificate.clone());
//! assert_eq!(certificate.thumbprint().len(), 43);
//! assert_eq!(certificate.self_issued(), Some(true));
//!
//! // What a front proxy's header may hold: here, the DER in base64.
//! let header = base64::engine::general_purpose::STANDARD.encode(&der);
//! let from_header = ClientCertificate::from_header_value(header.as_bytes())?;
//! assert_eq!(from_header, Some(certificate));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod certificate;
mod der;
mod header;

pub use certificate::{CertificateError, ClientCertificate, PresentedCertificate};
pub use header::MAX_HEADER_BYTES;

pub(crate) use header::presented;
