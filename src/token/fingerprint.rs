use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A token's identity in the audit trail: the first 16 bytes of its SHA-256, shown as
/// `sha256:` and 32 hex characters. The token itself never appears.
///
/// ```
/// use oauth_audit::token::TokenFingerprint;
///
/// let fp = TokenFingerprint::of("token");
/// assert_eq!(fp.to_string(), "sha256:3c469e9d6c5875d37a43f353d4f88e61");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenFingerprint([u8; 16]);

impl TokenFingerprint {
    /// Its 16 bytes (the first half of the token's SHA-256).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The fingerprint of `token`.
    pub fn of(token: &str) -> Self {
        let digest = Sha256::digest(token.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        TokenFingerprint(out)
    }
}

impl TokenFingerprint {
    /// The length of the text: `sha256:` and 32 hex digits.
    pub(crate) const TEXT_LEN: usize = 39;

    /// `sha256:` and the 32 hex digits, written into `buf`, two digits at a time from a
    /// table.
    pub(crate) fn text<'a>(&self, buf: &'a mut [u8; Self::TEXT_LEN]) -> &'a str {
        buf[..7].copy_from_slice(b"sha256:");
        for (byte, digits) in self.0.iter().zip(buf[7..].chunks_exact_mut(2)) {
            digits.copy_from_slice(crate::text::hex_pair(*byte));
        }
        // ASCII only.
        std::str::from_utf8(buf).unwrap_or_default()
    }
}

impl std::fmt::Display for TokenFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text(&mut [0; Self::TEXT_LEN]))
    }
}

impl std::str::FromStr for TokenFingerprint {
    type Err = &'static str;

    /// Reads `sha256:<32 hex digits>`, as written in `token.fingerprint`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let hex_digits = text
            .strip_prefix("sha256:")
            .ok_or("a token fingerprint starts with sha256:")?;
        let mut out = [0u8; 16];
        hex::decode_to_slice(hex_digits, &mut out)
            .map_err(|_| "a token fingerprint has 32 hex digits after sha256:")?;
        Ok(TokenFingerprint(out))
    }
}

impl std::fmt::Debug for TokenFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Serialize for TokenFingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Straight from a stack buffer: `collect_str` goes through the formatting machinery.
        s.serialize_str(self.text(&mut [0; Self::TEXT_LEN]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_text_is_sha256_and_the_bytes_in_hex_and_reads_back(bytes in any::<[u8; 16]>()) {
            let fingerprint = TokenFingerprint(bytes);
            let text = fingerprint.to_string();
            prop_assert_eq!(&text, &format!("sha256:{}", hex::encode(bytes)));
            prop_assert_eq!(text.parse::<TokenFingerprint>(), Ok(fingerprint));
            prop_assert_eq!(
                serde_json::to_string(&fingerprint).unwrap(),
                format!("\"{text}\"")
            );
        }
    }
}
