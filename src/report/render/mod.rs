//! The report written out: Markdown, CSV and HTML, all made from the same [`tables`], so
//! each shows the same numbers under the same names (JSON is the report serialised).

mod html;
mod markdown;
mod tables;

use std::path::Path;

use super::model::{RenderError, Report};

pub(super) fn markdown(report: &Report) -> String {
    markdown::render(report, &tables::sections(report))
}

pub(super) fn html(report: &Report) -> Result<String, RenderError> {
    html::render(report, &tables::sections(report))
}

/// One CSV file per table, named after it, in `dir` (made if missing); a file it creates is
/// readable by its owner only.
pub(super) fn csv(report: &Report, dir: &Path) -> Result<(), RenderError> {
    let failed = |e: &dyn std::fmt::Display| {
        RenderError(format!("cannot write CSV in {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
    let sections = tables::sections(report);
    // A table this report lacks, left in `dir` by an earlier one, would pass for part of
    // this one (one person's events in a report on everyone): it is removed.
    for id in tables::SOMETIMES {
        if !sections.iter().flat_map(|s| &s.tables).any(|t| t.id == id) {
            match std::fs::remove_file(dir.join(format!("{id}.csv"))) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(&e)),
                _ => {}
            }
        }
    }
    for table in sections.iter().flat_map(|s| &s.tables) {
        let path = dir.join(format!("{}.csv", table.id));
        // Readable by the owner only, as the trail's files are: the tables name people.
        let file = crate::no_follow::open(
            crate::writer::file_options(crate::writer::DEFAULT_FILE_MODE)
                .write(true)
                .create(true)
                .truncate(true),
            &path,
        )
        .map_err(|e| failed(&e))?;
        let mut writer = ::csv::Writer::from_writer(file);
        writer
            .write_record(&table.columns)
            .map_err(|e| failed(&e))?;
        for row in &table.rows {
            writer
                .write_record(row.iter().map(|cell| spreadsheet_safe(cell).into_owned()))
                .map_err(|e| failed(&e))?;
        }
        writer.flush().map_err(|e| failed(&e))?;
    }
    Ok(())
}

/// A cell a spreadsheet shows as text: one that would start a formula (`=`, `+`, `-`, `@`,
/// a tab or a carriage return: a username of `=HYPERLINK(...)`) gets a leading `'`, as
/// OWASP advises for CSV; numbers and the `-` placeholder stay as they are.
fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
        && cell != "-"
        && cell.parse::<f64>().is_err();
    if formula {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_safe;

    #[test]
    fn formulas_stay_text_and_numbers_stay_numbers() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("+1+cmd"), "'+1+cmd");
        assert_eq!(spreadsheet_safe("-"), "-");
        assert_eq!(spreadsheet_safe("-3"), "-3");
        assert_eq!(spreadsheet_safe("billing"), "billing");
    }
}
