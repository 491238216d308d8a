//! The documentation says what the command line accepts: every subcommand and long flag that
//! `--help` lists is named in `README.md` or `docs/*.md`, and every `oauth-audit ...` command
//! written in their code blocks uses subcommands and flags that exist.
//!
//! (The configuration file's side, every TOML example and every key, is checked by the unit
//! tests in `cli/src/config/docs_drift.rs`, which read the file with the proxy's own loader.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A command path (`[]`, `["spool", "status"]`) and what its `--help` lists.
#[derive(Debug, Default)]
struct Help {
    subcommands: BTreeSet<String>,
    flags: BTreeSet<String>,
}

/// clap's own `--help` and `--version`, and its `help` subcommand, need no page.
const BUILT_IN: [&str; 2] = ["help", "version"];

fn help(path: &[String]) -> Help {
    let output = Command::new(env!("CARGO_BIN_EXE_oauth-audit"))
        .args(path)
        .arg("--help")
        .env_remove("OAUTH_AUDIT_LOG_FORMAT")
        .output()
        .expect("run oauth-audit");
    assert!(output.status.success(), "{path:?} --help: {output:?}");
    read_help(&String::from_utf8(output.stdout).unwrap())
}

/// The subcommands under `Commands:` and the long flags under `Options:` (and any other
/// section clap lists arguments in), not the flags a description mentions.
fn read_help(text: &str) -> Help {
    let mut found = Help::default();
    let mut in_commands = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_commands = line.trim_end() == "Commands:";
            continue;
        }
        let entry = line.trim_start();
        if in_commands {
            if let Some(name) = entry.split_whitespace().next() {
                if !BUILT_IN.contains(&name) {
                    found.subcommands.insert(name.to_owned());
                }
            }
            continue;
        }
        // `  -h, --help`, `      --log-format <LOG_FORMAT>`: the entry starts with its flags.
        let entry = entry
            .strip_prefix('-')
            .filter(|rest| !rest.starts_with('-'))
            .and_then(|rest| rest.split_once(", "))
            .map_or(entry, |(_, rest)| rest);
        if let Some(rest) = entry.strip_prefix("--") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !BUILT_IN.contains(&name.as_str()) {
                found.flags.insert(format!("--{name}"));
            }
        }
    }
    found
}

/// Every command path and its help, from the top down.
fn command_line() -> BTreeMap<Vec<String>, Help> {
    let mut all = BTreeMap::new();
    let mut todo = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let found = help(&path);
        for sub in &found.subcommands {
            let mut below = path.clone();
            below.push(sub.clone());
            todo.push(below);
        }
        all.insert(path, found);
    }
    all
}

fn pages() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut paths = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|path| {
            let name = path.strip_prefix(&root).unwrap().display().to_string();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// Whether `text` holds `flag` as a whole flag (`--nats` is not in `--nats-ca`).
fn names_flag(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(at, _)| {
        let after = text[at + flag.len()..].chars().next();
        let before = text[..at].chars().next_back();
        !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

#[test]
fn every_subcommand_and_flag_is_documented() {
    let commands = command_line();
    assert!(commands.len() > 5, "{commands:?}");
    let docs: String = pages().into_iter().map(|(_, text)| text).collect();
    let mut missing = Vec::new();
    for (path, found) in &commands {
        let command = std::iter::once("oauth-audit")
            .chain(path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        if !path.is_empty() && !docs.contains(&command) {
            missing.push(command.clone());
        }
        for flag in &found.flags {
            if !names_flag(&docs, flag) {
                missing.push(format!("{command} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in README.md or docs/*.md: {missing:?}"
    );
}

/// One `oauth-audit ...` command written in a code block: its page, line and words.
struct Written {
    place: String,
    words: Vec<String>,
}

/// The commands in the pages' code blocks: lines that start with `oauth-audit ` (after a
/// `$ ` prompt), with their continuation lines (after a `\`, or indented and starting with
/// `[` or `--` as in a synopsis), up to a pipe, redirection, `&` or comment.
fn written_commands(name: &str, page: &str) -> Vec<Written> {
    let mut found = Vec::new();
    let mut in_block = false;
    let lines: Vec<&str> = page.lines().collect();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index].trim();
        index += 1;
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        let command = line.strip_prefix("$ ").unwrap_or(line);
        if !in_block || !command.starts_with("oauth-audit ") {
            continue;
        }
        let start = index;
        let mut text = command.to_owned();
        while index < lines.len() {
            let next = lines[index];
            let continued = text.ends_with('\\')
                || (next.starts_with(' ')
                    && (next.trim_start().starts_with('[') || next.trim_start().starts_with("--")));
            if !continued || next.trim_start().starts_with("```") {
                break;
            }
            text = format!("{} {}", text.trim_end_matches('\\'), next.trim());
            index += 1;
        }
        let mut words = Vec::new();
        for word in text.split_whitespace() {
            if ["|", ">", ">>", "&", "#", "2>", "&&", ";"].contains(&word) {
                break;
            }
            words.push(word.to_owned());
        }
        found.push(Written {
            place: format!("{name}:{start}"),
            words,
        });
    }
    found
}

/// What is wrong with a written command: an unknown subcommand or a flag its command lacks.
fn check_written(commands: &BTreeMap<Vec<String>, Help>, written: &Written) -> Vec<String> {
    let mut path: Vec<String> = Vec::new();
    let mut settled = false;
    let mut flags = Vec::new();
    let mut problems = Vec::new();
    for word in &written.words[1..] {
        let bare = word.trim_start_matches('[');
        if bare.starts_with("--") {
            let name: String = bare
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            flags.push(name);
            continue;
        }
        if settled {
            continue;
        }
        if commands[&path].subcommands.contains(bare) {
            path.push(bare.to_owned());
        } else {
            if path.is_empty() {
                problems.push(format!("{}: no subcommand {bare:?}", written.place));
            }
            settled = true;
        }
    }
    let known = &commands[&path].flags;
    for flag in flags {
        if flag != "--help" && flag != "--version" && !known.contains(&flag) {
            problems.push(format!(
                "{}: `oauth-audit {}` has no {flag}",
                written.place,
                path.join(" ")
            ));
        }
    }
    problems
}

#[test]
fn every_command_in_the_docs_exists() {
    let commands = command_line();
    let mut checked = 0;
    let mut problems = Vec::new();
    for (name, page) in pages() {
        for written in written_commands(&name, &page) {
            checked += 1;
            problems.extend(check_written(&commands, &written));
        }
    }
    assert!(checked > 10, "only {checked} commands found in the pages");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_readers_find_what_they_should() {
    let help = read_help(
        "Usage: oauth-audit spool [OPTIONS] <COMMAND>\n\nCommands:\n  status  What waits \
         (see --json)\n  help    Print this\n\nOptions:\n      --log-format <LOG_FORMAT>  \
         The format\n  -h, --help  Print help\n  -n, --lines <N>  How many, with --follow\n",
    );
    assert_eq!(help.subcommands, BTreeSet::from(["status".to_owned()]));
    assert_eq!(
        help.flags,
        BTreeSet::from(["--log-format".to_owned(), "--lines".to_owned()])
    );
    assert!(names_flag("see `--nats` here", "--nats"));
    assert!(!names_flag("see `--nats-ca` here", "--nats"));

    let page = "```sh\n$ oauth-audit detect --nats nats://a \\\n    --config d.toml | jq\n```\n\
                oauth-audit outside --a block\n```text\noauth-audit report PATH [--since T]\n\
                \x20                  [--bogus X]\n```\n";
    let written = written_commands("p.md", page);
    let words: Vec<_> = written.iter().map(|w| w.words.join(" ")).collect();
    assert_eq!(
        words,
        [
            "oauth-audit detect --nats nats://a --config d.toml",
            "oauth-audit report PATH [--since T] [--bogus X]"
        ]
    );
    let commands = command_line();
    assert!(check_written(&commands, &written[0]).is_empty());
    let problems = check_written(&commands, &written[1]);
    assert_eq!(
        problems,
        ["p.md:7: `oauth-audit report` has no --bogus"],
        "{problems:?}"
    );
}
