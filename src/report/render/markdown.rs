//! The report as Markdown: a heading per section, a pipe table per table.

use std::fmt::Write as _;

use super::super::model::Report;
use super::tables::Section;

/// A cell's text, shown as the text it is: the Markdown that makes links, images, code and
/// emphasis escaped (a client id of `[Approve](https://evil)` is not a link, nor `![](...)`
/// an image), `<`, `>` and `&` as
/// entities (no raw HTML), and control and bidirectional-override characters written as
/// `\u{..}` (nothing reaches a terminal as an escape sequence, nor reorders what is shown).
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '[' | ']' | '!' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
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
