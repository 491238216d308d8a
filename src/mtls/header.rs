//! A client certificate passed by a front proxy in a header, and which source a request's
//! certificate is believed from.

use std::borrow::Cow;

use base64::Engine;
use http::{Extensions, HeaderMap, HeaderName};
use percent_encoding::percent_decode_str;

use super::{CertificateError, ClientCertificate, PresentedCertificate};

/// The longest certificate header read, in bytes: a certificate with a long chain of
/// extensions in URL-encoded PEM fits; anything longer is recorded as malformed.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

/// The keys of an Envoy `x-forwarded-client-cert` element.
const XFCC_KEYS: [&str; 7] = ["by", "hash", "cert", "chain", "subject", "uri", "dns"];

impl ClientCertificate {
    /// The certificate in a front proxy's header value, `None` when the value says there is
    /// none (empty, `-` or `(null)`). Accepted:
    ///
    /// - PEM, URL-encoded as nginx's `$ssl_client_escaped_cert` writes it, or plain with its
    ///   line breaks turned into spaces or tabs (`$ssl_client_cert`, Apache `SSL_CLIENT_CERT`);
    /// - the DER in base64 or base64url, with or without padding or PEM armour (Traefik,
    ///   AWS ALB, Caddy), URL-encoded or not;
    /// - Envoy's `x-forwarded-client-cert`: its last element (the one the proxy next to this
    ///   server wrote), by `Cert` if present, else by `Hash` (the thumbprint only).
    ///
    /// Values longer than [`MAX_HEADER_BYTES`] are refused. The first certificate of a
    /// chain is the client's.
    pub fn from_header_value(value: &[u8]) -> Result<Option<Self>, CertificateError> {
        if value.len() > MAX_HEADER_BYTES {
            return Err(CertificateError::TooLong(MAX_HEADER_BYTES));
        }
        let text = std::str::from_utf8(value)
            .map_err(|_| CertificateError::Unreadable("not UTF-8"))?
            .trim();
        if text.is_empty() || text == "-" || text == "(null)" {
            return Ok(None);
        }
        if is_xfcc(text) {
            return from_xfcc(text);
        }
        from_pem_or_base64(text).map(Some)
    }
}

fn from_pem_or_base64(text: &str) -> Result<ClientCertificate, CertificateError> {
    let text = unescape(text)?;
    let text = text.trim();
    let der = match text.find(PEM_BEGIN) {
        Some(start) => {
            let body = &text[start + PEM_BEGIN.len()..];
            let end = body
                .find(PEM_END)
                .ok_or(CertificateError::Unreadable("PEM without its END line"))?;
            base64_any(&body[..end])?
        }
        None => base64_any(text)?,
    };
    ClientCertificate::from_der(&der)
}

/// Percent-decoding, when the value is percent-encoded (`+` is base64, never a space).
fn unescape(text: &str) -> Result<Cow<'_, str>, CertificateError> {
    if !text.contains('%') {
        return Ok(Cow::Borrowed(text));
    }
    percent_decode_str(text)
        .decode_utf8()
        .map_err(|_| CertificateError::Unreadable("percent-encoding of something not UTF-8"))
}

/// Base64 in either alphabet, whitespace and padding ignored.
fn base64_any(text: &str) -> Result<Vec<u8>, CertificateError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let compact = compact.trim_end_matches('=');
    let engine = if compact.contains(['-', '_']) {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD
    };
    engine
        .decode(compact)
        .map_err(|_| CertificateError::Unreadable("neither PEM nor base64"))
}

fn is_xfcc(text: &str) -> bool {
    text.split_once('=')
        .is_some_and(|(key, _)| XFCC_KEYS.iter().any(|k| key.trim().eq_ignore_ascii_case(k)))
}

/// Splits on `separator` outside double quotes (Envoy quotes values holding `,;=`).
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn from_xfcc(text: &str) -> Result<Option<ClientCertificate>, CertificateError> {
    let element = split_unquoted(text, ',').pop().unwrap_or_default();
    let mut hash = None;
    let mut cert = None;
    for pair in split_unquoted(element, ';') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        match key.trim().to_ascii_lowercase().as_str() {
            "cert" => cert = Some(value),
            "hash" => hash = Some(value),
            _ => {}
        }
    }
    if let Some(cert) = cert.filter(|c| !c.is_empty()) {
        return from_pem_or_base64(cert).map(Some);
    }
    match hash.filter(|h| !h.is_empty()) {
        Some(hash) => hex_sha256(hash)
            .map(|d| Some(ClientCertificate::from_digest(&d)))
            .ok_or(CertificateError::Unreadable("Hash is not a hex SHA-256")),
        None => Ok(None),
    }
}

fn hex_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// The certificate a request is believed to come with. From a trusted proxy, when the
/// layer is told its header, only that header counts: the connection's own certificate
/// is the proxy's. Otherwise the [`ClientCertificate`] the TLS terminator inserted.
pub(crate) fn presented(
    extensions: &Extensions,
    headers: &HeaderMap,
    header: Option<&HeaderName>,
    peer_trusted: bool,
) -> Option<PresentedCertificate> {
    match header {
        Some(name) if peer_trusted => {
            let mut values = headers.get_all(name).iter();
            let value = values.next()?;
            if values.next().is_some() {
                return Some(PresentedCertificate::Malformed(
                    CertificateError::Unreadable("the header is repeated"),
                ));
            }
            match ClientCertificate::from_header_value(value.as_bytes()) {
                Ok(certificate) => certificate.map(PresentedCertificate::Certificate),
                Err(e) => Some(PresentedCertificate::Malformed(e)),
            }
        }
        _ => extensions
            .get::<ClientCertificate>()
            .cloned()
            .map(PresentedCertificate::Certificate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DER_B64: &str = "MIIBiTCCAS+gAwIBAgIUCfICdZi1jpeh4ECkf/QuLTirwuswCgYIKoZIzj0EAwIwGTEXMBUGA1UEAwwOY2xpZW50LmV4YW1wbGUwIBcNMjYxMjAyMTQxOTM0WhgPMjEyNjExMDgxNDE5MzRaMBkxFzAVBgNVBAMMDmNsaWVudC5leGFtcGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEL7zIqvsJTZly1Cqg35tvyZIbFJbebgJPcHarYDUlmYJfL+VkuwEUvGrPwhY0CkP7vpyMa1pIOT4GO/Kzymu5IaNTMFEwHQYDVR0OBBYEFO4mNsp9dQWmWP1m5CdAKnLikBfEMB8GA1UdIwQYMBaAFO4mNsp9dQWmWP1m5CdAKnLikBfEMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgGSCv3P2//kCyOzJ5ds6ROKw8BQ9RjcFDXROYoRgLkfgCIQCk/TTx6mPD3QtmSMToYk8JFAS01JYZ0JcwRuurarDL3w==";

    fn der() -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(DER_B64)
            .unwrap()
    }

    fn pem(line_break: &str) -> String {
        let lines: Vec<&str> = DER_B64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "{PEM_BEGIN}{line_break}{}{line_break}{PEM_END}{line_break}",
            lines.join(line_break)
        )
    }

    fn read(value: &str) -> Result<Option<ClientCertificate>, CertificateError> {
        ClientCertificate::from_header_value(value.as_bytes())
    }

    #[test]
    fn reads_every_common_encoding_to_the_same_thumbprint() {
        let expected = ClientCertificate::from_der(&der()).unwrap();
        let escaped: String =
            percent_encoding::utf8_percent_encode(&pem("\n"), percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(der());
        let hex: String = {
            use sha2::Digest;
            sha2::Sha256::digest(der())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let envoy_cert = format!(
            "By=spiffe://a;Hash=00;Subject=\"CN=x,O=y\";URI=,By=spiffe://b;Cert=\"{escaped}\";Subject=\"CN=client.example\""
        );
        for value in [
            escaped.as_str(),
            &pem("\n"),
            &pem(" "),
            &pem("\t"),
            DER_B64,
            &url_safe,
            &envoy_cert,
        ] {
            assert_eq!(read(value), Ok(Some(expected.clone())), "{value}");
        }
        let by_hash = read(&format!("By=spiffe://b;Hash={hex};Subject=\"\""))
            .unwrap()
            .unwrap();
        assert_eq!(by_hash.thumbprint(), expected.thumbprint());
        assert_eq!(by_hash.self_issued(), None);
        assert_eq!(expected.self_issued(), Some(true));
    }

    #[test]
    fn says_what_is_wrong_and_never_panics() {
        for empty in ["", "  ", "-", "(null)", "By=spiffe://proxy"] {
            assert_eq!(read(empty), Ok(None), "{empty}");
        }
        assert!(matches!(
            read("not base64!"),
            Err(CertificateError::Unreadable(_))
        ));
        assert_eq!(read("aGVsbG8="), Err(CertificateError::NotACertificate));
        assert!(matches!(
            read(&format!("{PEM_BEGIN} {}", &DER_B64[..40])),
            Err(CertificateError::Unreadable(_))
        ));
        assert!(matches!(
            read("Hash=abc"),
            Err(CertificateError::Unreadable(_))
        ));
        assert!(matches!(
            read("%ff%fe"),
            Err(CertificateError::Unreadable(_))
        ));
        let long = "A".repeat(MAX_HEADER_BYTES + 1);
        assert_eq!(
            read(&long),
            Err(CertificateError::TooLong(MAX_HEADER_BYTES))
        );
        assert!(ClientCertificate::from_header_value(&[0xff, 0xfe]).is_err());
        // Truncated DER at every length.
        let der = der();
        for n in 0..der.len() {
            assert!(ClientCertificate::from_der(&der[..n]).is_err());
        }
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let name = HeaderName::from_static("x-client-cert");
        let mut headers = HeaderMap::new();
        headers.insert(name.clone(), DER_B64.parse().unwrap());
        let mut extensions = Extensions::new();
        let own = ClientCertificate::from_thumbprint(&"A".repeat(43)).unwrap();
        extensions.insert(own.clone());
        let from_header = ClientCertificate::from_der(&der()).unwrap();
        assert_eq!(
            presented(&extensions, &headers, Some(&name), true),
            Some(PresentedCertificate::Certificate(from_header))
        );
        assert_eq!(
            presented(&extensions, &headers, Some(&name), false),
            Some(PresentedCertificate::Certificate(own.clone()))
        );
        assert_eq!(
            presented(&extensions, &HeaderMap::new(), Some(&name), true),
            None
        );
        headers.append(name.clone(), DER_B64.parse().unwrap());
        assert!(matches!(
            presented(&extensions, &headers, Some(&name), true),
            Some(PresentedCertificate::Malformed(_))
        ));
        assert_eq!(
            presented(&extensions, &headers, None, true),
            Some(PresentedCertificate::Certificate(own))
        );
    }
}
