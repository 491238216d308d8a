//! `oauth-audit report`: the library's [`oauth_audit::report`] over files and directories,
//! written as HTML, JSON, Markdown or CSV, with progress on a terminal (docs/reports.md).

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use oauth_audit::chain::verify;
use oauth_audit::event::Timestamp;
use oauth_audit::report::{parse_days, parse_time, report_files, Report, ReportOptions};
use oauth_audit::writer::is_standard_stream;

use crate::Failure;

/// Flags of `oauth-audit report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// JSON-lines files (plain or gzip) and directories of rotated files (their .jsonl and
    /// .jsonl.gz files in name order).
    #[arg(
        value_name = "PATH",
        required_unless_present = "postgres_url_env",
        conflicts_with = "postgres_url_env"
    )]
    paths: Vec<PathBuf>,
    /// Report over a PostgreSQL events table instead (the counting done by the database);
    /// the connection string is taken from this environment variable (never from the
    /// command line, where other users see it).
    #[arg(long, value_name = "VAR", requires = "table")]
    postgres_url_env: Option<String>,
    /// The PostgreSQL events table: TABLE or SCHEMA.TABLE.
    #[arg(long, value_name = "NAME", requires = "postgres_url_env")]
    table: Option<String>,
    /// Only events at or after this time: RFC 3339 (2026-11-01T00:00:00Z) or an age
    /// (30d, 12h, 2w).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events before this time (RFC 3339 or an age); also the moment the unused
    /// permissions are judged at (default: now).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only events of this service (`service.name`).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Only events of this OAuth client (`actor.client_id`).
    #[arg(long, value_name = "ID")]
    client: Option<String>,
    /// Only events of this end user (`actor.subject`): a data-subject access report, every
    /// event listed.
    #[arg(long, value_name = "SUBJECT")]
    subject: Option<String>,
    /// A scope granted but not used for this long is reported unused: days (90, 90d), from
    /// 1 to 365. Clients first seen more recently are left out, as too young to judge.
    #[arg(long, value_name = "DAYS", default_value = "90d")]
    unused_after: String,
    /// The output format [default: from --out's extension (.html, .json, .md); Markdown
    /// on standard output without --out].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Where to write the report: a file, or a directory for CSV (one file per table);
    /// `-` or `/dev/stdout` for standard output (as without --out), and the system's other
    /// links to the process's own files (`/dev/stderr`, `/dev/fd/N`) are followed.
    #[arg(long, short, value_name = "PATH")]
    out: Option<PathBuf>,
}

/// What the report is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One self-contained page: inline charts and styles, sortable tables, no network.
    Html,
    /// The same numbers with stable field names, for pipelines.
    Json,
    /// Tables for a ticket or a wiki.
    Markdown,
    /// One file per table, in the --out directory.
    Csv,
}

/// Inputs this large get a progress indication (on a terminal).
const PROGRESS_FROM: u64 = 32 << 20;

/// Runs `report`.
pub fn run(mut args: ReportArgs) -> Result<(), Failure> {
    // Standard output, as a JSON-lines writer's `path` reads them.
    if args
        .out
        .as_deref()
        .is_some_and(|out| matches!(out.to_str(), Some("-" | "/dev/stdout")))
    {
        args.out = None;
    }
    let format = match (args.format, &args.out) {
        (Some(format), _) => format,
        (None, None) => Format::Markdown,
        // Where the process's output goes: as on standard output.
        (None, Some(out)) if is_standard_stream(out) => Format::Markdown,
        (None, Some(out)) => format_of(out)?,
    };
    if format == Format::Csv && args.out.is_none() {
        return Err(Failure::Usage(
            "report: CSV is one file per table: give --out DIRECTORY".into(),
        ));
    }
    let now = Timestamp::now();
    let mut options = ReportOptions::default().now(now).unused_after_days(
        parse_days(&args.unused_after)
            .map_err(|e| Failure::Usage(format!("--unused-after: {e}")))?,
    );
    if let Some(since) = &args.since {
        options = options
            .since(parse_time(since, now).map_err(|e| Failure::Usage(format!("--since: {e}")))?);
    }
    if let Some(until) = &args.until {
        options = options
            .until(parse_time(until, now).map_err(|e| Failure::Usage(format!("--until: {e}")))?);
    }
    if let Some(service) = args.service {
        options = options.service(service);
    }
    if let Some(client) = args.client {
        options = options.client(client);
    }
    if let Some(subject) = args.subject {
        options = options.subject(subject);
    }

    let report = match (&args.postgres_url_env, &args.table) {
        (Some(var), Some(table)) => report_table(var, table, options)?,
        _ => {
            let files = verify::expand(&args.paths).map_err(|e| Failure::Usage(e.to_string()))?;
            let bar = progress(verify::total_size(&files));
            let mut current: Option<PathBuf> = None;
            let report = report_files(&args.paths, options, &mut |file| {
                bar.inc(1);
                if current.as_deref() != Some(file) {
                    bar.set_message(file.display().to_string());
                    current = Some(file.to_owned());
                }
            })
            .map_err(|e| Failure::Usage(e.to_string()))?;
            bar.finish_and_clear();
            report
        }
    };
    for broken in report.broken() {
        eprintln!("oauth-audit: {broken}: the rest of this file cannot be read");
    }
    for skipped in report.skipped_examples() {
        eprintln!("oauth-audit: {skipped}, skipped");
    }
    if report.skipped() > report.skipped_examples().len() as u64 {
        eprintln!(
            "oauth-audit: {} line(s) skipped in all (not oauth-audit events)",
            report.skipped()
        );
    }

    let text = match format {
        Format::Json => report.to_json(),
        Format::Markdown => report.to_markdown(),
        Format::Html => report
            .to_html()
            .map_err(|e| Failure::Runtime(e.to_string()))?,
        Format::Csv => {
            let dir = args.out.as_deref().unwrap_or(Path::new("."));
            report
                .write_csv(dir)
                .map_err(|e| Failure::Runtime(format!("report: {e}")))?;
            eprintln!(
                "oauth-audit: report of {} event(s) written to {} (one CSV file per table)",
                report.matched(),
                dir.display()
            );
            return Ok(());
        }
    };
    let written = match &args.out {
        Some(path) => write_private(path, text.as_bytes()),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
        }
    };
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(Failure::Runtime(format!(
                "report: cannot write {}: {e}",
                args.out
                    .as_ref()
                    .map_or("standard output".into(), |p| p.display().to_string())
            )));
        }
        _ => {}
    }
    if let Some(out) = &args.out {
        eprintln!(
            "oauth-audit: report of {} event(s) written to {}",
            report.matched(),
            out.display()
        );
    }
    Ok(())
}

/// Writes the report to `path`. A report names people (subjects, addresses; with
/// `--subject`, every event of one), so a file it creates is readable by its owner only, as
/// the trail's files are; an existing file keeps its permissions. A symbolic link at `path`
/// is refused, as the trail's files refuse one: whoever planted it would choose which file
/// the report overwrites. The system's links to the process's own files are followed, as
/// the writers follow them, and appended to: what the process already wrote there (a file
/// its standard error goes to) is kept.
fn write_private(path: &Path, text: &[u8]) -> std::io::Result<()> {
    if is_standard_stream(path) {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)?
            .write_all(text);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        std::os::unix::fs::OpenOptionsExt::mode(
            &mut options,
            oauth_audit::writer::DEFAULT_FILE_MODE,
        );
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    }
    let mut file = options.open(path).map_err(|error| {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            std::io::Error::new(
                error.kind(),
                format!(
                    "{} is a symbolic link: a report is never written through one",
                    path.display()
                ),
            )
        } else {
            error
        }
    })?;
    file.write_all(text)
}

/// The report over a PostgreSQL table, with a spinner on a terminal while the database
/// counts.
#[cfg(feature = "postgres")]
fn report_table(var: &str, table: &str, options: ReportOptions) -> Result<Report, Failure> {
    use oauth_audit::backend::PostgresEventReader;
    use oauth_audit::report::report_postgres;

    let target = crate::table::Table::from_args(var, table)?;
    let runtime = crate::table::runtime()?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_message(format!("PostgreSQL is counting the events of {table}"));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    let report = runtime.block_on(async {
        let mut reader =
            PostgresEventReader::connect(&target.connection, target.schema, target.name)
                .await
                .map_err(|e| Failure::Usage(format!("--table {table}: {e}")))?;
        report_postgres(&mut reader, options)
            .await
            .map_err(|e| Failure::Runtime(format!("--table {table}: {e}")))
    });
    bar.finish_and_clear();
    report
}

#[cfg(not(feature = "postgres"))]
fn report_table(_: &str, _: &str, _: ReportOptions) -> Result<Report, Failure> {
    Err(Failure::Usage(
        "--postgres-url-env: this build has no PostgreSQL support (feature postgres)".into(),
    ))
}

fn format_of(out: &Path) -> Result<Format, Failure> {
    let name = out.to_string_lossy();
    if name.ends_with(".html") || name.ends_with(".htm") {
        Ok(Format::Html)
    } else if name.ends_with(".json") {
        Ok(Format::Json)
    } else if name.ends_with(".md") {
        Ok(Format::Markdown)
    } else if out.is_dir() || name.ends_with('/') {
        Ok(Format::Csv)
    } else {
        Err(Failure::Usage(format!(
            "report: cannot tell the format from {}: name it .html, .json or .md, or give --format",
            out.display()
        )))
    }
}

/// Lines read so far and their rate (compressed files have no known line count).
fn progress(total_bytes: u64) -> ProgressBar {
    if total_bytes < PROGRESS_FROM || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {human_pos} lines, {per_sec} {wide_msg}")
    {
        bar.set_style(style);
    }
    bar
}
