//! The report as Markdown: a heading per section, a pipe table per table.

use std::fmt::Write as _;

use super::super::model::Report;
use super::tables::Section;

/// A cell's text, safe inside a pipe table (no `|`, no line breaks).
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
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
