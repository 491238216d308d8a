//! The client certificate of a connection, known by its RFC 8705 thumbprint.

use base64::Engine;
use sha2::{Digest, Sha256};

/// The client certificate of the TLS connection a request came on, as RFC 8705 knows it:
/// its SHA-256 thumbprint (`x5t#S256`, base64url without padding).
///
/// A server that terminates TLS inserts it into each request's extensions; the audit layer
/// compares it with the `cnf.x5t#S256` of the token presented and uses it to tell how a
/// client authenticated at the token endpoint. Only the thumbprint is kept: the certificate
/// itself is never recorded. See the [module docs](crate::mtls).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCertificate {
    thumbprint: String,
    self_issued: Option<bool>,
}

/// Why a value is not a client certificate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The bytes are not one DER-encoded X.509 certificate.
    #[error("not a DER-encoded X.509 certificate")]
    NotACertificate,
    /// A header value is neither PEM, base64 DER nor an Envoy `x-forwarded-client-cert`
    /// element with a `Cert` or `Hash`.
    #[error("the header value holds no certificate ({0})")]
    Unreadable(&'static str),
    /// A header value is longer than [`MAX_HEADER_BYTES`](super::MAX_HEADER_BYTES).
    #[error("the header value is longer than {0} bytes")]
    TooLong(usize),
    /// A thumbprint that is not the base64url of 32 bytes.
    #[error("not a SHA-256 thumbprint in base64url")]
    BadThumbprint,
}

impl ClientCertificate {
    /// The certificate of a handshake, DER-encoded (what rustls's
    /// `peer_certificates()[0]` holds).
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let (issuer, subject) =
            super::der::issuer_and_subject(der).ok_or(CertificateError::NotACertificate)?;
        Ok(ClientCertificate {
            thumbprint: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(der)),
            self_issued: Some(issuer == subject),
        })
    }

    /// A certificate known only by its thumbprint (`x5t#S256`, base64url of its SHA-256,
    /// padding allowed), when the server that terminated TLS passes nothing else.
    pub fn from_thumbprint(x5t: &str) -> Result<Self, CertificateError> {
        let x5t = x5t.trim().trim_end_matches('=');
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(x5t)
            .map_err(|_| CertificateError::BadThumbprint)?;
        if bytes.len() != 32 {
            return Err(CertificateError::BadThumbprint);
        }
        Ok(Self::from_digest(&bytes))
    }

    pub(super) fn from_digest(sha256: &[u8]) -> Self {
        ClientCertificate {
            thumbprint: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256),
            self_issued: None,
        }
    }

    /// The SHA-256 thumbprint, base64url without padding, as in `cnf.x5t#S256`.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Whether the certificate's issuer is its subject (a self-signed certificate, RFC 8705
    /// §2.2) rather than one a CA issued (§2.1); `None` when only the thumbprint is known.
    pub fn self_issued(&self) -> Option<bool> {
        self.self_issued
    }
}

/// What a request's connection showed of a client certificate: the certificate, or a
/// front proxy's header that holds none.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresentedCertificate {
    /// A certificate, from the TLS handshake or a trusted proxy's header.
    Certificate(ClientCertificate),
    /// A trusted proxy's header that could not be read: recorded as `malformed`.
    Malformed(CertificateError),
}

impl PresentedCertificate {
    /// The certificate, if one was read.
    pub fn certificate(&self) -> Option<&ClientCertificate> {
        match self {
            PresentedCertificate::Certificate(c) => Some(c),
            PresentedCertificate::Malformed(_) => None,
        }
    }
}
