//! The report as Markdown: a heading per section, a pipe table per table.

use std::fmt::Write as _;

use super::super::model::Report;
use super::tables::Section;

/// A cell's text, shown as the text it is: the Markdown that makes links, images, code,
/// emphasis and strikethrough escaped (a client id of `[Approve](https://evil)` is not a link,
/// nor `![](...)` an image, nor `_x_` or `~~x~~` emphasis), `<`, `>` and `&` as entities (no
/// raw HTML), and control, separator and format characters (bidirectional overrides,
/// isolates and marks, zero-width characters) written as `\u{..}` (nothing reaches a
/// terminal as an escape sequence, reorders what is shown, or hides inside a name).
///
/// GitHub-flavoured Markdown also makes a link of bare text (its "extended autolinks"):
/// `https://evil.example/approve` and `www.evil.example`. The `:` of a `://` and the `.`
/// after a `www` are escaped, which shows them as they are but keeps the renderer from
/// seeing a link (an e-mail address still becomes a `mailto:` link: escaping does not stop
/// that, and usernames are often addresses).
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (at, c) in text.char_indices() {
        let autolink = match c {
            ':' => text[at + 1..].starts_with("//"),
            '.' => text[..at]
                .get(at.saturating_sub(3)..)
                .is_some_and(|www| www.eq_ignore_ascii_case("www")),
            _ => false,
        };
        match c {
            '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '!' | '|' => {
                out.push('\\');
                out.push(c);
            }
            ':' | '.' if autolink => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // What an event's text escapes too: controls, line separators and every
            // format character (bidirectional marks and overrides, zero-width characters).
            c if crate::text::needs_escape(c) => {
                out.push_str(&c.escape_unicode().to_string());
            }
            c => out.push(c),
        }
    }
    out
}

pub fn render(report: &Report, sections: &[Section]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# OAuth audit report\n\nGenerated {}, judged as of {}.\n",
        report.generated_at, report.as_of
    );
    for section in sections {
        let _ = writeln!(out, "## {}\n\n{}\n", section.title, section.intro);
        for table in &section.tables {
            let _ = writeln!(out, "### {}\n", table.title);
            if table.rows.is_empty() {
                let _ = writeln!(out, "{}\n", table.empty);
                continue;
            }
            let header: Vec<String> = table.columns.iter().map(|c| cell(c)).collect();
            let _ = writeln!(out, "| {} |", header.join(" | "));
            let rule: Vec<&str> = table
                .numeric
                .iter()
                .map(|&numeric| if numeric { "---:" } else { "---" })
                .collect();
            let _ = writeln!(out, "| {} |", rule.join(" | "));
            for row in &table.rows {
                let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
            out.push('\n');
        }
    }
    out
}
