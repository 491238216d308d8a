//! `oauth-audit detect PATH...`: the detection rules over stored events (JSON-lines files
//! and directories of rotated files), for back-testing and incident investigation. Alerts
//! go to standard output as JSON lines, a summary to standard error.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use oauth_audit::chain::verify;
use oauth_audit::detect::Detector;

use crate::Failure;

/// Runs the detector over the files of `paths`.
pub fn run(paths: &[PathBuf], mut detector: Detector) -> Result<(), Failure> {
    let files = verify::expand(paths).map_err(|e| Failure::Usage(e.to_string()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    let mut unreadable = 0u64;
    let mut write_error = None;
    for file in &files {
        let broken = verify::for_each_line(file, &mut |location, line| {
            if line.iter().all(u8::is_ascii_whitespace) || write_error.is_some() {
                return;
            }
            let Ok(event) = serde_json::from_slice::<serde_json::Value>(line) else {
                unreadable += 1;
                eprintln!("oauth-audit: {location}: not a JSON event, skipped");
                return;
            };
            for alert in detector.check_json(&event) {
                if let Some(rule) = alert.alert.as_ref().map(|a| a.rule.clone()) {
                    *by_rule.entry(rule).or_default() += 1;
                }
                let written = serde_json::to_writer(&mut out, &alert)
                    .map_err(std::io::Error::other)
                    .and_then(|()| out.write_all(b"\n"));
                if let Err(e) = written {
                    write_error = Some(e);
                }
            }
        })
        .map_err(|e| Failure::Usage(e.to_string()))?;
        if let Some((location, error)) = broken {
            eprintln!("oauth-audit: {location}: cannot be read: {error}");
        }
    }
    let flushed = out.flush();
    match write_error.map_or(flushed, Err) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(Failure::Runtime(format!("cannot write the alerts: {e}")));
        }
        _ => {}
    }
    let stats = detector.stats();
    let rules = super::by_rule(&by_rule);
    eprintln!(
        "{} events in {} file(s): {} alert(s){rules}; {} line(s) not JSON; {} group(s) forgotten to stay within --max-keys",
        stats.events,
        files.len(),
        stats.alerts,
        unreadable,
        stats.evicted
    );
    Ok(())
}
