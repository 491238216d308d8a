//! Scrubbing an event's free text (an error description, a revocation reason) of a request's
//! secrets: the literals of its form and the secrets of its head (cookies, a Basic
//! password), quoted back by a server as they came, form- or percent-encoded, whole or in
//! part, alone or inside longer words, among text of the server's own.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    literals: Vec<Vec<u8>>,
    head: Vec<Vec<u8>>,
    pieces: Vec<Piece>,
}

#[derive(Arbitrary, Debug)]
enum Piece {
    /// Text of the server's own.
    Text(Vec<u8>),
    /// A secret of the request (of its head, or a literal of its form), quoted back.
    Secret {
        head: bool,
        which: u8,
        quoting: Quoting,
    },
}

#[derive(Arbitrary, Debug)]
enum Quoting {
    AsSent,
    FormEncoded,
    PercentEncoded,
    /// Percent-encoded with lower-case hexadecimal digits (`%2f`).
    PercentEncodedLower,
    /// Bytes `from..to` of it (on character boundaries).
    Part {
        from: u8,
        to: u8,
    },
}

/// Text from bytes: printable ASCII and a few characters beyond it. Control and invisible
/// characters are left out: the scrub's result shows them escaped (`\u{1b}`), which would
/// read as text no secret was.
fn text(bytes: &[u8], max: usize) -> String {
    const BEYOND: [char; 3] = ['é', '€', '日'];
    bytes
        .iter()
        .take(max)
        .map(|&b| match b % 98 {
            n @ 0..=94 => char::from(b' ' + n),
            n => BEYOND[usize::from(n - 95)],
        })
        .collect()
}

fn quoted(secret: &str, quoting: &Quoting) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    match quoting {
        Quoting::AsSent => secret.to_owned(),
        Quoting::FormEncoded => form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        Quoting::PercentEncoded => utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
        Quoting::PercentEncodedLower => {
            let encoded = utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string();
            let mut lower = String::with_capacity(encoded.len());
            let mut hex = 0;
            for c in encoded.chars() {
                if c == '%' {
                    hex = 2;
                    lower.push(c);
                } else if hex > 0 {
                    hex -= 1;
                    lower.push(c.to_ascii_lowercase());
                } else {
                    lower.push(c);
                }
            }
            lower
        }
        Quoting::Part { from, to } => {
            let bounds: Vec<usize> = secret
                .char_indices()
                .map(|(at, _)| at)
                .chain([secret.len()])
                .collect();
            let pick = |n: u8| bounds[usize::from(n) % bounds.len()];
            let (a, b) = (pick(*from), pick(*to));
            secret[a.min(b)..a.max(b)].to_owned()
        }
    }
}

fuzz_target!(|input: Input| {
    let literals: Vec<String> = input.literals.iter().take(6).map(|b| text(b, 48)).collect();
    let head: Vec<String> = input.head.iter().take(6).map(|b| text(b, 48)).collect();
    let mut answer = String::new();
    for piece in input.pieces.iter().take(64) {
        match piece {
            Piece::Text(bytes) => answer.push_str(&text(bytes, 64)),
            Piece::Secret {
                head: from_head,
                which,
                quoting,
            } => {
                let list = if *from_head { &head } else { &literals };
                if !list.is_empty() {
                    answer.push_str(&quoted(&list[usize::from(*which) % list.len()], quoting));
                }
            }
        }
    }
    let literals: Vec<&str> = literals.iter().map(String::as_str).collect();
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    oauth_audit::fuzzing::scrub(&answer, &literals, &head);
});
