//! Just enough DER to tell a certificate from anything else and read its issuer and subject.

/// One DER element: its tag, its contents, and the bytes after it.
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
    rest: &'a [u8],
}

fn element(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    let (&first, after_length) = after_tag.split_first()?;
    let (length, body) = if first < 0x80 {
        (usize::from(first), after_length)
    } else {
        // Long form, at most four length bytes (DER forbids the indefinite form 0x80).
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || after_length.len() < count {
            return None;
        }
        let (bytes, body) = after_length.split_at(count);
        let length = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (length, body)
    };
    if body.len() < length {
        return None;
    }
    let (contents, rest) = body.split_at(length);
    let header = input.len() - body.len();
    Some(Element {
        tag,
        contents,
        whole: &input[..header + length],
        rest,
    })
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
/// `[0] EXPLICIT Version` of a `TBSCertificate`.
const VERSION: u8 = 0xa0;

/// The issuer and subject `Name`s (as DER) of an X.509 certificate (RFC 5280 §4.1), or
/// `None` when `der` is not one certificate and nothing else.
pub(super) fn issuer_and_subject(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let certificate = element(der)?;
    if certificate.tag != SEQUENCE || !certificate.rest.is_empty() {
        return None;
    }
    let tbs = element(certificate.contents)?;
    let algorithm = element(tbs.rest)?;
    let signature = element(algorithm.rest)?;
    if tbs.tag != SEQUENCE
        || algorithm.tag != SEQUENCE
        || signature.tag != BIT_STRING
        || !signature.rest.is_empty()
    {
        return None;
    }
    let mut field = element(tbs.contents)?;
    if field.tag == VERSION {
        field = element(field.rest)?;
    }
    let serial = field;
    let signature_algorithm = element(serial.rest)?;
    let issuer = element(signature_algorithm.rest)?;
    let validity = element(issuer.rest)?;
    let subject = element(validity.rest)?;
    let shapes = [
        (serial.tag, INTEGER),
        (signature_algorithm.tag, SEQUENCE),
        (issuer.tag, SEQUENCE),
        (validity.tag, SEQUENCE),
        (subject.tag, SEQUENCE),
    ];
    shapes
        .iter()
        .all(|(tag, expected)| tag == expected)
        .then_some((issuer.whole, subject.whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lengths_and_refuses_truncation() {
        let e = element(&[0x04, 0x02, 0xaa, 0xbb, 0xcc]).unwrap();
        assert_eq!(
            (e.tag, e.contents, e.rest),
            (0x04, &[0xaa, 0xbb][..], &[0xcc][..])
        );
        let long = [&[0x04, 0x81, 0x80][..], &[0u8; 0x80]].concat();
        assert_eq!(element(&long).unwrap().contents.len(), 0x80);
        assert!(element(&[0x04, 0x03, 0xaa]).is_none());
        assert!(element(&[0x04, 0x80]).is_none());
        assert!(element(&[0x04, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(element(&[]).is_none());
        assert!(issuer_and_subject(&[0x30, 0x00]).is_none());
        assert!(issuer_and_subject(b"not a certificate").is_none());
    }
}
