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

/// One CSV file per table, named after it, in `dir` (made if missing).
pub(super) fn csv(report: &Report, dir: &Path) -> Result<(), RenderError> {
    let failed = |e: &dyn std::fmt::Display| {
        RenderError(format!("cannot write CSV in {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
    for table in tables::sections(report).iter().flat_map(|s| &s.tables) {
        let path = dir.join(format!("{}.csv", table.id));
        let mut writer = ::csv::Writer::from_path(&path).map_err(|e| failed(&e))?;
        writer
            .write_record(&table.columns)
            .map_err(|e| failed(&e))?;
        for row in &table.rows {
            writer.write_record(row).map_err(|e| failed(&e))?;
        }
        writer.flush().map_err(|e| failed(&e))?;
    }
    Ok(())
}
