//! What scrubbing an upstream's free text costs (docs/benchmarks.md, "Literal secrets").
//!
//! ```text
//! cargo run --release --example scrub_bench
//! ```
//!
//! An upstream may quote a request in its `error_description`, so the text of an answer is
//! scrubbed of the request's secrets before it is recorded. The secrets of a form are matched
//! literally, and a form may hold thousands of parameters: this times `scrub` for a few and
//! for 6,000 secrets (a new set for each text, as each request has its own), against texts of 512 bytes to 64 KiB that quote none of them (the
//! search then reads everything), and with no secret at all (the word checks alone). The
//! rows marked "near misses" are texts an attacker would send back: each position begins
//! with a secret's first byte and has its last byte where a secret's would end, which is
//! where a search that filters on those two bytes (`memchr`'s) does the most work.

use std::time::{Duration, Instant};

use oauth_audit::event::{scrub, Secrets};

fn time(rounds: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed() / rounds
}

fn main() {
    println!("| secrets | text | scrub | scrub without secrets |\n| ---: | ---: | ---: | ---: |");
    for (n, size, near_misses) in [
        (3usize, 512usize, false),
        (10, 8 * 1024, false),
        (6_000, 8 * 1024, false),
        (100, 64 * 1024, false),
        (6_000, 64 * 1024, false),
        (10, 8 * 1024, true),
        (6_000, 8 * 1024, true),
        (6_000, 64 * 1024, true),
    ] {
        let values: Vec<String> = (0..n).map(|i| format!("p{i:05}-xxx")).collect();
        // A request's secrets, as each request makes them: what `scrub` prepares for them
        // (their encoded forms, an automaton) serves one answer, not the next.
        let secrets = || {
            let mut secrets = Secrets::none();
            for value in &values {
                secrets.literal(value.as_str());
            }
            secrets
        };
        let none = Secrets::none();
        // Every secret is `p` and five digits, then `-xxx`: `p` and `x` alternate.
        let sentence = if near_misses {
            "px"
        } else {
            "an error description that quotes nothing secret at all, "
        };
        let text = sentence.repeat(size / sentence.len() + 1)[..size].to_owned();
        let rounds = if n <= 100 { 200 } else { 5 };
        let with = time(rounds, || {
            std::hint::black_box(scrub(&text, &secrets(), 512));
        });
        let without = time(rounds, || {
            std::hint::black_box(scrub(&text, &none, 512));
        });
        let kind = if near_misses { " of near misses" } else { "" };
        println!("| {n} | {size} B{kind} | {with:.1?} | {without:.1?} |");
    }
}
