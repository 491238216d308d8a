//! The report as one self-contained HTML page: styles and a few lines of script inline,
//! charts as inline SVG drawn by `plotters`, no request to anywhere, readable printed.
//!
//! Everything from the trail is escaped (askama for the page, plotters for the charts).
//! Should something slip through all the same, the page's content security policy lets only
//! its own script run: it names that script by its SHA-256, so an injected one is refused.

use askama::Template;
use base64::Engine as _;
use plotters::prelude::*;
use sha2::{Digest, Sha256};

use super::super::model::{RenderError, Report};
use super::tables::Section;

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    report: &'a Report,
    sections: &'a [Section],
    /// Events by day, stacked by outcome.
    per_day: String,
    /// Events by kind.
    by_kind: String,
    /// The page's one script: sortable tables.
    script: &'static str,
    /// `sha256-...` of the script, for the content security policy.
    script_hash: String,
}

/// Sorts a table by the column whose heading is clicked.
const SCRIPT: &str = include_str!("sort.js");

pub fn render(report: &Report, sections: &[Section]) -> Result<String, RenderError> {
    let failed = |e: &dyn std::fmt::Display| RenderError(format!("report: {e}"));
    let page = Page {
        report,
        sections,
        per_day: per_day_chart(report).map_err(|e| failed(&e))?,
        by_kind: by_kind_chart(report).map_err(|e| failed(&e))?,
        script: SCRIPT,
        script_hash: format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(SCRIPT))
        ),
    };
    page.render().map_err(|e| failed(&e))
}

type ChartResult = Result<String, Box<dyn std::error::Error>>;

const SUCCESS: RGBColor = RGBColor(46, 125, 50);
const FAILURE: RGBColor = RGBColor(198, 40, 40);
const UNKNOWN: RGBColor = RGBColor(120, 120, 120);

/// Columns per day with events: successes at the bottom, failures above, unknown on top.
fn per_day_chart(report: &Report) -> ChartResult {
    let days = &report.sections.overview.per_day;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 260)).into_drawing_area();
        root.fill(&WHITE)?;
        let most = days
            .iter()
            .map(|d| d.outcomes.total())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0u32..days.len().max(1) as u32, 0u64..most + most / 10 + 1)?;
        let step = (days.len() / 10).max(1);
        chart
            .configure_mesh()
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .disable_x_mesh()
            .x_labels(days.len().clamp(1, 12))
            .x_label_formatter(&|x| {
                let index = *x as usize;
                if index.is_multiple_of(step) {
                    days.get(index).map_or(String::new(), |d| {
                        d.day.get(5..).unwrap_or(&d.day).to_owned()
                    })
                } else {
                    String::new()
                }
            })
            .y_desc("events")
            .draw()?;
        for (index, day) in days.iter().enumerate() {
            let x = index as u32;
            let o = day.outcomes;
            let layers = [
                (0, o.success, SUCCESS),
                (o.success, o.success + o.failure, FAILURE),
                (o.success + o.failure, o.total(), UNKNOWN),
            ];
            chart.draw_series(layers.into_iter().filter(|(lo, hi, _)| hi > lo).map(
                |(lo, hi, color)| {
                    let mut bar = Rectangle::new([(x, lo), (x + 1, hi)], color.filled());
                    bar.set_margin(0, 0, 2, 2);
                    bar
                },
            ))?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// A bar per kind, most first.
fn by_kind_chart(report: &Report) -> ChartResult {
    let kinds = &report.sections.overview.by_kind;
    let mut svg = String::new();
    {
        let height = 60 + 26 * kinds.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let most = kinds
            .iter()
            .map(|k| k.outcomes.total())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(190)
            // One segment per kind, its label in the middle of its bar.
            .build_cartesian_2d(
                0u64..most + most / 10 + 1,
                (0u32..kinds.len().max(1) as u32).into_segmented(),
            )?;
        chart
            .configure_mesh()
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .disable_y_mesh()
            .y_labels(kinds.len().max(1))
            // Most first, at the top: the axis counts upwards.
            .y_label_formatter(&|y| match y {
                SegmentValue::CenterOf(y) => (kinds.len() as u32)
                    .checked_sub(*y + 1)
                    .and_then(|index| kinds.get(index as usize))
                    .map_or(String::new(), |k| k.kind.clone()),
                _ => String::new(),
            })
            .x_desc("events")
            .draw()?;
        chart.draw_series(kinds.iter().enumerate().map(|(index, kind)| {
            let y = (kinds.len() - 1 - index) as u32;
            let mut bar = Rectangle::new(
                [
                    (0, SegmentValue::Exact(y)),
                    (kind.outcomes.total(), SegmentValue::Exact(y + 1)),
                ],
                RGBColor(21, 101, 192).filled(),
            );
            bar.set_margin(3, 3, 0, 0);
            bar
        }))?;
        root.present()?;
    }
    Ok(svg)
}
