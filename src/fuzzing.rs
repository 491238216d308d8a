//! Entry points for the cargo-fuzz targets in `fuzz/` into parsers that are not public.
//!
//! Not a public API: it exists only with the `fuzzing` feature, and it changes with the
//! internals it reaches. Every function here checks the invariants of what it drives and
//! panics when one breaks, so that a fuzzer reports it.

use std::path::Path;

pub use crate::context::forwarded::{
    forwarded as parse_forwarded, single_value as parse_single_value,
    x_forwarded_for as parse_x_forwarded_for, Hop,
};
pub use crate::oauth::fuzz::{authorize_response, form, json_response, login_response};
pub use crate::resource::read_bearer_challenge;

use crate::sink::backlog::spool::{Spool, SpoolConfig};

/// Puts `bytes` into a spool directory as its only segment (as a crash or a disk fault may
/// leave it), opens the spool and reads everything back.
///
/// Checks: recovery never fails on content; every whole line is either an event or
/// quarantined, never both and never lost; a torn last line is cut, not read.
pub fn spool_segment(dir: &Path, bytes: &[u8]) {
    // The directory is reused from one input to the next: start from nothing each time.
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("spool test directory");
    std::fs::write(dir.join(format!("{:020}.jsonl", 0)), bytes).expect("segment written");
    let (mut spool, recovered) = Spool::open(SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes: u64::MAX,
        segment_bytes: 1 << 20,
        fsync: false,
    })
    .expect("a spool opens whatever its segment holds");
    let whole_lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    let torn = bytes.len() - bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    assert_eq!(recovered.torn_bytes, torn as u64, "torn tail measured");
    assert_eq!(
        spool.events(),
        whole_lines,
        "one pending entry per whole line"
    );
    let (mut events, mut corrupt) = (0u64, 0u64);
    loop {
        let batch = spool.read_batch(64, 1 << 20).expect("segment readable");
        if batch.lines == 0 {
            break;
        }
        assert_eq!(
            batch.lines,
            batch.events.len() as u64 + batch.corrupt,
            "each line read is an event or quarantined"
        );
        events += batch.events.len() as u64;
        corrupt += batch.corrupt;
        spool.ack(&batch).expect("ack");
    }
    assert_eq!(events + corrupt, whole_lines, "no whole line lost");
    assert!(spool.is_empty());
}

/// Scrubs `text` of `literals` (as the secrets of a request's form are given) and of `head`
/// (as the secrets of a request's head are held: cookies, a Basic password), as an event's
/// free text is scrubbed before it is recorded.
///
/// Checks, as docs/security.md promises them: the result is bounded; no literal is left as
/// it came, form-encoded or percent-encoded; no head secret with a byte that ends a word is
/// left as it came; none of 16 bytes or more made of word bytes is left as it came or
/// percent-encoded, inside a word or not (except percent-encoded right after a `%` that its
/// first two bytes make the escape of a word's byte); a shorter one is never left as a whole
/// word. A text the scrub cannot vouch for is replaced whole by a notice, which holds no
/// secret.
pub fn scrub(text: &str, literals: &[&str], head: &[&str]) {
    use crate::event::{is_word_byte, HeadSecrets, Secrets, REDACTED, TOO_MANY_SECRETS};
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

    const MAX_BYTES: usize = 4096;
    let mut held = HeadSecrets::default();
    for secret in head {
        held.add(secret);
    }
    let mut secrets = Secrets::none();
    for literal in literals {
        secrets.literal(*literal);
    }
    secrets.head(&held);
    let out = crate::event::scrub(text, &secrets, MAX_BYTES);
    assert!(out.len() <= MAX_BYTES, "{} bytes out", out.len());
    // What the scrub wrote is no secret, even where a secret is a piece of it: its notices
    // become a byte that no secret here holds.
    let mut left = out
        .replace(REDACTED, "\u{1}")
        .replace(TOO_MANY_SECRETS, "\u{1}");
    // A result cut at its bound may end in the first bytes of a word, or of a notice.
    let cut = out.len() + 64 > MAX_BYTES;
    if cut {
        for notice in [REDACTED, TOO_MANY_SECRETS] {
            if let Some(n) = (1..notice.len())
                .rev()
                .find(|&n| left.ends_with(&notice[..n]))
            {
                left.truncate(left.len() - n);
                left.push('\u{1}');
                break;
            }
        }
    }
    let check = |secret: &str, what: &str| {
        assert!(
            secret.contains('\u{1}') || !left.contains(secret),
            "{what} {secret:?} left in {out:?} (from {text:?})"
        );
    };
    for literal in literals.iter().filter(|l| !l.is_empty()) {
        check(literal, "literal");
        let form: String = form_urlencoded::byte_serialize(literal.as_bytes()).collect();
        check(&form, "form-encoded literal");
        let encoded = utf8_percent_encode(literal, NON_ALPHANUMERIC).to_string();
        check(&encoded, "percent-encoded literal");
    }
    for secret in head.iter().filter(|s| !s.is_empty()) {
        if !secret.bytes().all(is_word_byte) {
            check(secret, "head secret");
        } else if secret.len() >= 16 {
            check(secret, "head secret");
            let encoded = utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string();
            // Not defended: right after a `%`, its first two bytes read as the escape of a
            // word's byte (`100%41...`) hide it from the word's decoding.
            let hidden = text.match_indices(&encoded).any(|(at, _)| {
                at > 0
                    && text.as_bytes()[at - 1] == b'%'
                    && u8::from_str_radix(encoded.get(..2).unwrap_or("zz"), 16)
                        .is_ok_and(is_word_byte)
            });
            if !hidden {
                check(&encoded, "percent-encoded head secret");
            }
        } else if !cut {
            // A short secret inside a longer word stays (docs/security.md), also when the
            // rest of that word was another secret: a replacement counts as word bytes here.
            let ends_word = |c: char| c != '\u{1}' && (!c.is_ascii() || !is_word_byte(c as u8));
            let whole = left.split(ends_word).any(|word| word == *secret);
            assert!(
                !whole,
                "head secret {secret:?} left as a word in {out:?} (from {text:?})"
            );
        }
    }
}
