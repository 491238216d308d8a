//! The proxy's TOML configuration loader: any text, and no secret value ever quoted back.
#![no_main]
#![allow(dead_code, unused_imports)]

use std::path::Path;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

// The loader lives in the command's crate, which has no library target: compile its two
// modules (they depend on nothing else of it) into this target.
#[path = "../../cli/src/config/mod.rs"]
mod config;
#[path = "../../cli/src/routes.rs"]
mod routes;

const SECRET: &str = "Zq9-not-for-logs-7Kx";

#[derive(Arbitrary, Debug)]
struct Input {
    text: String,
    /// Where a secret-looking key is slipped in, as a line of its own.
    at: u16,
    key: u8,
}

fuzz_target!(|input: Input| {
    let _ = config::FileConfig::parse(Path::new("fuzz.toml"), &input.text);
    // Inside a multi-line string, the slipped-in line would be that string's value.
    if input.text.contains(SECRET) || input.text.contains("\"\"\"") || input.text.contains("'''") {
        return;
    }
    let keys = [
        "client_secret",
        "password",
        "token",
        "api_key",
        "jwks_url_env",
    ];
    let key = keys[input.key as usize % keys.len()];
    let lines: Vec<&str> = input.text.lines().collect();
    let at = input.at as usize % (lines.len() + 1);
    let mut text = lines[..at].join("\n");
    text.push_str(&format!("\n{key} = \"{SECRET}\"\n"));
    text.push_str(&lines[at..].join("\n"));
    if let Err(err) = config::FileConfig::parse(Path::new("fuzz.toml"), &text) {
        let message = err.to_string();
        assert!(
            !message.contains(SECRET),
            "a secret was quoted back: {message}"
        );
    }
});
