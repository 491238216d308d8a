//! The documentation says what the configuration accepts: every ```` ```toml ```` block of
//! `README.md` and `docs/*.md` loads through [`FileConfig::parse`], and every key the
//! configuration types accept is named in `docs/config.md`.
//!
//! A block that shows part of a table is preceded by `<!-- toml: fragment of [TABLE] -->` and
//! checked under that table's header; one that shows a mistake is preceded by
//! `<!-- toml: invalid on purpose -->` and must fail to load. Parsing opens no file and reads
//! no variable, so paths and `*_env` names in the examples need not exist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::FileConfig;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `README.md` and every `docs/*.md`.
fn pages() -> Vec<(PathBuf, String)> {
    let root = repository();
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
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect()
}

/// What the marker before a block says about it.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Whole,
    Fragment(String),
    Invalid,
}

struct Block {
    line: usize,
    kind: Kind,
    text: String,
}

/// The ```` ```toml ```` blocks of a page, with the marker on the last non-empty line above
/// each.
fn toml_blocks(page: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = page.lines().collect();
    let mut blocks = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let fence = lines[index].trim_start();
        if !fence.starts_with("```") {
            index += 1;
            continue;
        }
        let info = fence.trim_start_matches('`').trim();
        let end = (index + 1..lines.len())
            .find(|&i| lines[i].trim() == "```")
            .ok_or_else(|| format!("line {}: unclosed code block", index + 1))?;
        if info == "toml" {
            let marker = lines[..index]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim())
                .unwrap_or_default();
            let kind = match marker
                .strip_prefix("<!-- toml:")
                .and_then(|m| m.strip_suffix("-->"))
                .map(str::trim)
            {
                None => Kind::Whole,
                Some("invalid on purpose") => Kind::Invalid,
                Some(other) => match other.strip_prefix("fragment of ") {
                    Some(header) if header.starts_with('[') && header.ends_with(']') => {
                        Kind::Fragment(header.to_owned())
                    }
                    _ => {
                        return Err(format!(
                            "line {}: unknown marker {marker:?}: write `<!-- toml: fragment of \
                             [TABLE] -->` or `<!-- toml: invalid on purpose -->`",
                            index + 1
                        ))
                    }
                },
            };
            blocks.push(Block {
                line: index + 1,
                kind,
                text: lines[index + 1..end].join("\n") + "\n",
            });
        }
        index = end + 1;
    }
    Ok(blocks)
}

#[test]
fn every_toml_example_in_the_docs_loads() {
    let mut checked = 0;
    let mut problems = Vec::new();
    for (path, page) in pages() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let blocks = match toml_blocks(&page) {
            Ok(blocks) => blocks,
            Err(problem) => {
                problems.push(format!("{name}: {problem}"));
                continue;
            }
        };
        for block in blocks {
            checked += 1;
            let text = match &block.kind {
                Kind::Fragment(header) => format!("{header}\n{}", block.text),
                Kind::Whole | Kind::Invalid => block.text.clone(),
            };
            let place = format!("{name} (the example at line {})", block.line);
            match (FileConfig::parse(Path::new(&place), &text), &block.kind) {
                (Ok(_), Kind::Invalid) => problems.push(format!(
                    "{place}: marked invalid on purpose, but it loads:\n{text}"
                )),
                (Err(e), Kind::Whole | Kind::Fragment(_)) => problems.push(format!("{e}\n{text}")),
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // The pages hold examples; none found means the reading went wrong.
    assert!(checked >= 5, "only {checked} toml blocks found");
}

#[test]
fn markers_say_what_a_block_is() {
    let page = "a\n\n```toml\n[proxy]\n```\n\n<!-- toml: fragment of [proxy] -->\n```toml\n\
                listen = \"x\"\n```\n<!-- toml: invalid on purpose -->\n\n```toml\nx = 1\n```\n\
                ```sh\n[not toml]\n```\n";
    let blocks = toml_blocks(page).unwrap();
    let kinds: Vec<_> = blocks.iter().map(|b| &b.kind).collect();
    assert_eq!(
        kinds,
        [
            &Kind::Whole,
            &Kind::Fragment("[proxy]".into()),
            &Kind::Invalid
        ]
    );
    assert_eq!(blocks[1].text, "listen = \"x\"\n");
    assert_eq!(blocks[2].line, 13);
    assert!(toml_blocks("<!-- toml: fragmnt of [proxy] -->\n```toml\nx = 1\n```\n").is_err());
}

/// One step from a table into one of its keys.
#[derive(Clone, Debug)]
enum Step {
    /// `key = { ... }`
    Table(String),
    /// `key = [{ ... }]`, with the tag that picks a variant of an internally tagged enum.
    Array(String, Option<(String, String)>),
    /// `key = { NAME = { ... } }`: a map whose values are tables.
    Map(String),
}

/// The entries of the table at the start of `steps`, `inner` at the innermost one.
fn entries(steps: &[Step], inner: &str) -> String {
    let Some((first, rest)) = steps.split_first() else {
        return inner.to_owned();
    };
    let below = entries(rest, inner);
    match first {
        Step::Table(key) => format!("{key} = {{ {below} }}"),
        Step::Map(key) => format!("{key} = {{ __probe_name = {{ {below} }} }}"),
        Step::Array(key, None) => format!("{key} = [{{ {below} }}]"),
        Step::Array(key, Some((tag, variant))) => {
            let sep = if below.is_empty() { "" } else { ", " };
            format!("{key} = [{{ {tag} = \"{variant}\"{sep}{below} }}]")
        }
    }
}

/// The serde error for a document with `inner` at `steps`; none when it loads.
fn probe<T: DeserializeOwned>(steps: &[Step], inner: &str) -> Option<String> {
    toml::from_str::<T>(&entries(steps, inner))
        .err()
        .map(|e| e.message().to_owned())
}

/// The backquoted names serde lists after `after` in `message` (``expected one of `a`, `b` ``).
fn listed(message: &str, after: &str) -> Option<Vec<String>> {
    let rest = &message[message.find(after)? + after.len()..];
    Some(
        rest.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

/// A key the configuration accepts: its dotted place, and whether it holds a table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    place: String,
    name: String,
    table: bool,
}

/// Every key `T` accepts, found by asking serde: an unknown key is refused with the list of
/// known ones (`deny_unknown_fields`), and each of those is tried as a table in turn.
fn accepted_keys<T: DeserializeOwned>() -> BTreeSet<Key> {
    let mut keys = BTreeSet::new();
    walk::<T>(&mut Vec::new(), "", &mut keys);
    keys
}

/// Adds the keys of the table at `steps` (named `place`) and of the tables inside it.
fn walk<T: DeserializeOwned>(steps: &mut Vec<Step>, place: &str, keys: &mut BTreeSet<Key>) {
    let message = probe::<T>(steps, "__probe = 1").unwrap_or_default();
    if let Some(fields) = listed(&message, "unknown field `__probe`") {
        for field in fields {
            let here = if place.is_empty() {
                field.clone()
            } else {
                format!("{place}.{field}")
            };
            let mut table = false;
            for step in [
                Step::Table(field.clone()),
                Step::Array(field.clone(), None),
                Step::Map(field.clone()),
            ] {
                steps.push(step);
                let below = probe::<T>(steps, "__probe = 1").unwrap_or_default();
                if below.contains("unknown field `__probe`") || below.contains("missing field") {
                    table = true;
                    walk::<T>(steps, &here, keys);
                    steps.pop();
                    break;
                }
                steps.pop();
            }
            if !table {
                // A choice among names (`flush = "fsync"`): each name is a value to document.
                let message =
                    probe::<T>(steps, &format!("{field} = \"__probe\"")).unwrap_or_default();
                for variant in listed(&message, "unknown variant `__probe`").unwrap_or_default() {
                    keys.insert(Key {
                        place: here.clone(),
                        name: format!("\"{variant}\""),
                        table: false,
                    });
                }
            }
            keys.insert(Key {
                place: here,
                name: field,
                table,
            });
        }
    } else if let Some(tag) = listed(&message, "missing field ") {
        // An internally tagged enum (`[[writer]]`'s `type`): its variants, then each one's keys.
        let tag = tag.first().cloned().unwrap_or_default();
        let Some(Step::Array(key, None)) = steps.pop() else {
            panic!("{place}: {message}");
        };
        steps.push(Step::Array(
            key.clone(),
            Some((tag.clone(), "__probe".into())),
        ));
        let message = probe::<T>(steps, "").unwrap_or_default();
        steps.pop();
        let variants = listed(&message, "unknown variant `__probe`")
            .unwrap_or_else(|| panic!("{place}: {message}"));
        keys.insert(Key {
            place: format!("{place}.{tag}"),
            name: tag.clone(),
            table: false,
        });
        for variant in variants {
            keys.insert(Key {
                place: format!("{place}.{tag}"),
                name: format!("\"{variant}\""),
                table: false,
            });
            steps.push(Step::Array(
                key.clone(),
                Some((tag.clone(), variant.clone())),
            ));
            walk::<T>(steps, &format!("{place}[{variant}]"), keys);
            steps.pop();
        }
        steps.push(Step::Array(key, None));
    } else {
        panic!("{place}: not a table that refuses unknown keys: {message}");
    }
}

/// The sections of a page by the table their heading names (`## `[proxy]``,
/// `### `[proxy.tls]`: ...`, `## `[[writer]]``): a heading that names none continues the
/// table before it; the sections before the first table are the top level's (`""`).
fn sections(page: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = vec![(String::new(), String::new())];
    for line in page.lines() {
        if line.starts_with('#') {
            let table = line
                .split_once("`[")
                .and_then(|(_, rest)| rest.split_once("]`"))
                .map(|(name, _)| name.trim_matches(['[', ']']).to_owned());
            if let Some(table) = table {
                found.push((table, String::new()));
            }
        }
        let last = found.last_mut().unwrap();
        last.1.push_str(line);
        last.1.push('\n');
    }
    found
}

/// The text that should name `key`: the sections of the deepest table that holds it
/// (`writer[jsonl].retry.spool_dir` in `[[writer]]`'s), or the whole page for a table, whose
/// heading names it.
fn text_for<'a>(key: &Key, page: &'a str, sections: &'a [(String, String)]) -> Vec<&'a str> {
    if key.table {
        return vec![page];
    }
    let mut table: String = key
        .place
        .rsplit_once('.')
        .map_or("", |(parent, _)| parent)
        .to_owned();
    while let Some(open) = table.find('[') {
        let close = open + table[open..].find(']').unwrap();
        table.replace_range(open..=close, "");
    }
    loop {
        let matching: Vec<&str> = sections
            .iter()
            .filter(|(name, _)| *name == table)
            .map(|(_, text)| text.as_str())
            .collect();
        if !matching.is_empty() || table.is_empty() {
            return matching;
        }
        table = table
            .rsplit_once('.')
            .map_or("", |(parent, _)| parent)
            .to_owned();
    }
}

/// The keys of `T` that `page` does not name: a key as `` `key` ``, a table also as
/// `[...key]` or `[...key.NAME]`, a variant of a tag as its quoted value. With `by_section`,
/// a key must be named in the section of its table.
fn undocumented<T: DeserializeOwned>(page: &str, by_section: bool) -> Vec<String> {
    let sections = sections(page);
    accepted_keys::<T>()
        .into_iter()
        .filter(|key| {
            let name = &key.name;
            let texts = if by_section {
                text_for(key, page, &sections)
            } else {
                vec![page]
            };
            let named = texts.iter().any(|text| {
                if name.starts_with('"') {
                    text.contains(name.as_str())
                } else {
                    text.contains(&format!("`{name}`"))
                        || (key.table
                            && [
                                format!("[{name}]"),
                                format!("[[{name}]]"),
                                format!(".{name}]"),
                                format!(".{name}."),
                            ]
                            .iter()
                            .any(|form| text.contains(form.as_str())))
                }
            });
            !named
        })
        .map(|key| format!("{} ({})", key.place, key.name))
        .collect()
}

fn config_page() -> String {
    std::fs::read_to_string(repository().join("docs/config.md")).unwrap()
}

#[test]
fn every_key_of_the_file_is_documented() {
    let keys = accepted_keys::<FileConfig>();
    // The walk found the tables and what is inside them, not only the top level.
    for place in [
        "proxy.tls.certificate",
        "route.scopes",
        "detect.rules.count",
    ] {
        assert!(
            keys.iter().any(|k| k.place == place),
            "{place} not found in {keys:?}"
        );
    }
    for (place, name) in [
        ("writer.type", "\"jsonl\""),
        ("proxy.path_case", "\"insensitive\""),
    ] {
        assert!(
            keys.iter().any(|k| k.place == place && k.name == name),
            "{place} = {name} not found in {keys:?}"
        );
    }
    let missing = undocumented::<FileConfig>(&config_page(), true);
    assert!(
        missing.is_empty(),
        "keys the file accepts that docs/config.md does not name: {missing:?}"
    );
}

/// The file's column of the row of `type_name` in the table of "The library's configuration
/// types" (`| file | type | builds |`).
fn library_row(page: &str, type_name: &str) -> Option<String> {
    let start = page.find("## The library's configuration types")?;
    let section = &page[start..];
    let end = section[3..]
        .find("\n## ")
        .map_or(section.len(), |at| at + 3);
    section[..end].lines().find_map(|line| {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        (cells.len() > 3 && cells[2].starts_with(&format!("`{type_name}`")))
            .then(|| cells[1].to_owned())
    })
}

/// The top-level keys of `T` that its row in the table of library types does not list.
fn missing_from_row<T: DeserializeOwned>(page: &str, type_name: &str) -> Vec<String> {
    let Some(row) = library_row(page, type_name) else {
        return vec![format!("no row for `{type_name}`")];
    };
    accepted_keys::<T>()
        .into_iter()
        .filter(|key| key.place == key.name)
        .filter(|key| {
            let name = &key.name;
            ![
                format!("`{name}`"),
                format!("`[{name}]`"),
                format!("`[[{name}]]`"),
            ]
            .iter()
            .any(|form| row.contains(form.as_str()))
        })
        .map(|key| format!("{type_name}: {}", key.name))
        .collect()
}

#[test]
fn every_key_of_the_library_types_is_documented() {
    use oauth_audit::config::{AuditLayerConfig, AuditorConfig};
    let page = config_page();
    let mut missing = undocumented::<AuditorConfig>(&page, false);
    missing.extend(undocumented::<AuditLayerConfig>(&page, false));
    assert!(
        missing.is_empty(),
        "keys of oauth_audit::config that docs/config.md does not name: {missing:?}"
    );
    // The table of library types says which of the file's keys each type reads.
    let mut missing = missing_from_row::<AuditorConfig>(&page, "AuditorConfig");
    missing.extend(missing_from_row::<AuditLayerConfig>(
        &page,
        "AuditLayerConfig",
    ));
    assert!(
        missing.is_empty(),
        "keys the table of library types in docs/config.md does not list for their type: \
         {missing:?}"
    );
}

#[test]
fn a_key_missing_from_the_page_is_reported() {
    let page = config_page().replace("`preserve_host`", "`preserve-host`");
    let missing = undocumented::<FileConfig>(&page, true);
    assert_eq!(missing, ["proxy.preserve_host (preserve_host)"]);
}

#[test]
fn a_key_named_only_outside_its_table_is_reported() {
    let page = config_page();
    let queue = page.find("## `[queue]`").unwrap();
    let chain = page.find("## `[chain]`").unwrap();
    let moved = format!(
        "{}{}{}\nSee `batch_size`.\n",
        &page[..queue],
        page[queue..chain].replace("`batch_size`", "`batch-size`"),
        &page[chain..]
    );
    let missing = undocumented::<FileConfig>(&moved, true);
    assert_eq!(missing, ["queue.batch_size (batch_size)"]);
    assert!(undocumented::<FileConfig>(&moved, false).is_empty());
}
