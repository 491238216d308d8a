//! `oauth-audit verify`: checks a chained trail in JSON-lines files, directories of rotated
//! files or a PostgreSQL table, and says what is wrong where (`docs/integrity.md`).
//!
//! Exit codes: 0 when nothing is wrong (warnings and notes allowed), 1 when something is,
//! 2 on a usage error (no input, an unreadable key, path or table).

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use oauth_audit::chain::verify::{self, Report, Verifier};
use oauth_audit::chain::VerifyingKey;

use crate::Failure;

/// Flags of `oauth-audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// JSON-lines files (plain or gzip) and directories of rotated files (their .jsonl and
    /// .jsonl.gz files in name order), read in the order given.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Also read a PostgreSQL events table; the connection string is taken from this
    /// environment variable (never from the command line, where other users see it).
    #[arg(long, value_name = "VAR", requires = "table")]
    postgres_url_env: Option<String>,
    /// The PostgreSQL events table: TABLE or SCHEMA.TABLE.
    #[arg(long, value_name = "NAME", requires = "postgres_url_env")]
    table: Option<String>,
    /// A public key (a .pub file from `oauth-audit keygen`, or the key itself) that
    /// checkpoints and drop reports may be signed with; repeatable, for key rotation.
    /// Without any, signatures are not checked.
    #[arg(long = "key", value_name = "PUB")]
    keys: Vec<String>,
    /// Checkpoints kept outside the log (the chain's checkpoint_file, JSON lines): the log
    /// must hold everything they cover, which also catches a cut tail.
    #[arg(long, value_name = "FILE")]
    checkpoints: Option<PathBuf>,
    /// The oldest files were removed on purpose (retention): a stream whose first events
    /// are missing is reported as a `trimmed_start` note instead of deleted events, when it
    /// began before every stream whose event 1 is in the input and before every other
    /// event still there (retention removes the oldest events first). Gaps after a
    /// stream's first event still count.
    #[arg(long)]
    trimmed_start: bool,
    /// The name of the sink whose storage is read (its `name`: `dropped.sink` in its drop
    /// reports). A drop report of another sink is then an `inserted` error; with --key, a
    /// signed drop report excuses a gap only when this names its sink.
    #[arg(long, value_name = "NAME")]
    sink: Option<String>,
    /// Events without a chain before the first chained one were written before chaining
    /// was turned on: an `unchained_prefix` note instead of `inserted` events.
    #[arg(long)]
    unchained_prefix: bool,
    /// Print the report as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// Inputs this large get a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 32 << 20;

/// Runs `verify`: the report on standard output, the exit code from what it found.
pub fn run(args: VerifyArgs) -> Result<ExitCode, Failure> {
    if args.paths.is_empty() && args.postgres_url_env.is_none() {
        return Err(Failure::Usage(
            "verify: no input; give files or directories, or --postgres-url-env and --table".into(),
        ));
    }
    let keys = args
        .keys
        .iter()
        .map(|key| read_key(key))
        .collect::<Result<Vec<_>, _>>()?;
    let files = verify::expand(&args.paths).map_err(|e| Failure::Usage(e.to_string()))?;
    let mut verifier = Verifier::new(keys)
        .trimmed_start(args.trimmed_start)
        .unchained_prefix(args.unchained_prefix);
    if let Some(sink) = &args.sink {
        verifier = verifier.sink(sink.clone());
    }
    if let Some(checkpoints) = &args.checkpoints {
        verify::read_checkpoints(checkpoints, &mut verifier)
            .map_err(|e| Failure::Usage(format!("--checkpoints: {e}")))?;
    }
    let bar = progress_bar(verify::total_size(&files));
    for file in &files {
        bar.set_message(file.display().to_string());
        verify::read_file(file, &mut verifier, &mut |bytes| bar.inc(bytes))
            .map_err(|e| Failure::Usage(e.to_string()))?;
    }
    bar.finish_and_clear();
    if let (Some(var), Some(table)) = (&args.postgres_url_env, &args.table) {
        read_table(var, table, &mut verifier)?;
    }
    let report = verifier.finish();
    print(&report, args.json)?;
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A key file, or the key's text itself.
fn read_key(key: &str) -> Result<VerifyingKey, Failure> {
    match VerifyingKey::from_file(Path::new(key)) {
        Ok(key) => Ok(key),
        Err(file_error) => VerifyingKey::parse(key)
            .map_err(|_| Failure::Usage(format!("--key {key}: {file_error}"))),
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    if total < PROGRESS_FROM || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {wide_msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn print(report: &Report, json: bool) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let written = if json {
        serde_json::to_writer_pretty(&mut out, report)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        writeln!(out, "{report}")
    };
    // A closed pipe (`verify ... | head`) is not a reason to change the verdict.
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Runtime(format!("cannot write the report: {e}")))
        }
        _ => Ok(()),
    }
}

#[cfg(feature = "postgres")]
fn read_table(var: &str, table: &str, verifier: &mut Verifier) -> Result<(), Failure> {
    use std::sync::Arc;

    use oauth_audit::backend::PostgresEventReader;
    use oauth_audit::chain::verify::Location;

    let target = crate::table::Table::from_args(var, table)?;
    let runtime = crate::table::runtime()?;
    let label: Arc<str> = table.into();
    runtime.block_on(async {
        let mut reader =
            PostgresEventReader::connect(&target.connection, target.schema, target.name)
                .await
                .map_err(|e| Failure::Usage(format!("--table {table}: {e}")))?;
        let rows = reader
            .count()
            .await
            .map_err(|e| Failure::Usage(format!("--table {table}: {e}")))?;
        let bar = if rows >= 100_000 && std::io::stderr().is_terminal() {
            ProgressBar::new(rows)
        } else {
            ProgressBar::hidden()
        };
        reader
            .read(|id, event| {
                verifier.push(Location::row(&label, id), event.as_bytes());
                bar.inc(1);
            })
            .await
            .map_err(|e| Failure::Usage(format!("--table {table}: {e}")))?;
        bar.finish_and_clear();
        Ok(())
    })
}

#[cfg(not(feature = "postgres"))]
fn read_table(_: &str, _: &str, _: &mut Verifier) -> Result<(), Failure> {
    Err(Failure::Usage(
        "--postgres-url-env: this build has no PostgreSQL support (feature postgres)".into(),
    ))
}
