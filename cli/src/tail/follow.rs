//! `tail PATH`: a JSON-lines file, or a directory of rotated files, read to its end and then
//! followed.
//!
//! Following is done by looking again every [`POLL`], as `tail -F` does without inotify:
//! the file's identity (device and inode) and size say whether it was replaced (logrotate's
//! rename and create, the rotating writer's rename) or truncated (logrotate's
//! copytruncate). A replaced file is read to its end before the new one is read from its
//! start; a truncated one is read again from its start. Polling, rather than a
//! file-notification crate, also works on network file systems and costs one `stat` per
//! poll.
//!
//! In a directory (the rotating writer's), the active file is the last `.jsonl` in name
//! order (rotated files are `<prefix>-<time>.jsonl[.gz]`, which sort before
//! `<prefix>.jsonl`). Files that appear meanwhile are read whole, in name order, so a file
//! that was created and rotated away between two looks is not missed; the rotated copy of a
//! file already read through its handle is recognised by its first line (an event, with
//! its unique id) and not read again.

use std::collections::BTreeSet;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use oauth_audit::chain::verify;

use super::print::{LastEntries, Printer};
use crate::Failure;

/// The longest line taken whole, as `verify` and `detect` read files: no event is this
/// long, and a file without line ends must not take all memory.
const MAX_LINE: usize = 1 << 20;

/// First lines of rotated-away files remembered (a few rotations between two looks).
const MAX_RETIRED: usize = 64;

/// Listings in a row that may each find a rotation before the active file is opened.
const MAX_ATTEMPTS: usize = 100;

/// How often a followed file is looked at again.
pub const POLL: Duration = Duration::from_millis(200);

/// Why reading stopped.
enum Stop {
    /// A file could not be read.
    Read(PathBuf, io::Error),
    /// Standard output could not be written.
    Write(io::Error),
}

/// Shows the last `n` events of `path` (a file or a directory) and, with `follow`, every
/// event added to it until the process is stopped.
pub fn run(path: &Path, n: usize, follow: bool, printer: &mut Printer) -> Result<(), Failure> {
    let metadata = fs::metadata(path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
    let result = if metadata.is_dir() {
        directory(path, n, follow, printer)
    } else {
        file(path, n, follow, printer)
    };
    match result {
        Ok(()) => printer.flush().or_else(quiet_pipe),
        Err(Stop::Write(e)) => quiet_pipe(e),
        Err(Stop::Read(path, e)) => Err(Failure::Runtime(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// A closed pipe (`tail ... | head`) ends the command quietly.
fn quiet_pipe(error: io::Error) -> Result<(), Failure> {
    if error.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Failure::Runtime(format!(
            "cannot write to standard output: {error}"
        )))
    }
}

fn file(path: &Path, n: usize, follow: bool, printer: &mut Printer) -> Result<(), Stop> {
    if is_gzip(path).map_err(|e| Stop::Read(path.to_owned(), e))? {
        let mut last = LastEntries::new(n);
        read_whole(path, printer, &mut last)?;
        show_all(printer, last)?;
        if follow {
            eprintln!(
                "oauth-audit: {} is compressed: shown, not followed",
                path.display()
            );
        }
        return Ok(());
    }
    let mut open = Open::at(path).map_err(|e| Stop::Read(path.to_owned(), e))?;
    let mut last = LastEntries::new(n);
    open.read_new(&mut |line, place| {
        if let Some(entry) = printer.judge(line, place) {
            last.push(entry);
        }
        Ok(())
    })?;
    show_all(printer, last)?;
    if !follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(POLL);
        open.read_new(&mut |line, place| printer.line(line, place))?;
        match fs::metadata(path) {
            Ok(now) if open.replaced_by(&now) => {
                // Written before the rename or removal: still this file's.
                open.read_new(&mut |line, place| printer.line(line, place))?;
                open.finish(&mut |line, place| printer.line(line, place))?;
                if let Ok(new) = Open::at(path) {
                    eprintln!(
                        "oauth-audit: {} was replaced; following the new file",
                        path.display()
                    );
                    open = new;
                    open.read_new(&mut |line, place| printer.line(line, place))?;
                }
            }
            Ok(now) if now.len() < open.pos => {
                eprintln!(
                    "oauth-audit: {} was truncated; reading it from the start",
                    path.display()
                );
                open.rewind().map_err(|e| Stop::Read(path.to_owned(), e))?;
                open.read_new(&mut |line, place| printer.line(line, place))?;
            }
            // Gone for now (between a rename and a create): it may come back.
            _ => {}
        }
        printer.flush().map_err(Stop::Write)?;
    }
}

fn directory(dir: &Path, n: usize, follow: bool, printer: &mut Printer) -> Result<(), Stop> {
    let unreadable = |e| Stop::Read(dir.to_owned(), e);
    let (names, mut active) = open_newest(dir).map_err(unreadable)?;
    let mut known: BTreeSet<String> = names.iter().map(|name| stem(name).to_owned()).collect();
    let mut last = LastEntries::new(n);
    if let Some(open) = &mut active {
        open.read_new(&mut |line, place| {
            if let Some(entry) = printer.judge(line, place) {
                last.push(entry);
            }
            Ok(())
        })?;
    }
    let active_stem = active.as_ref().map(|open| stem(&open.name).to_owned());
    for older in known.iter().rev() {
        if last.wanted() == 0 {
            break;
        }
        if Some(older) == active_stem.as_ref() {
            continue;
        }
        let mut page = LastEntries::new(last.wanted());
        read_stem(dir, older, printer, &mut page)?;
        last.prepend(page);
    }
    show_all(printer, last)?;
    if !follow {
        return Ok(());
    }
    // The first lines of files read to their end through a handle and then rotated away:
    // their rotated copies (renamed, maybe compressed) begin with the same line, which holds
    // an event id, and are not read again.
    let mut retired: Vec<Vec<u8>> = Vec::new();
    loop {
        std::thread::sleep(POLL);
        if let Some(open) = &mut active {
            open.read_new(&mut |line, place| printer.line(line, place))?;
            let Ok(names) = list(dir) else {
                continue;
            };
            let path = dir.join(&open.name);
            let current = active_of(&names) == Some(&open.name)
                && fs::metadata(&path).is_ok_and(|now| !open.replaced_by(&now));
            if current {
                if fs::metadata(&path).is_ok_and(|now| now.len() < open.pos) {
                    eprintln!(
                        "oauth-audit: {} was truncated; reading it from the start",
                        path.display()
                    );
                    open.rewind().map_err(|e| Stop::Read(path.clone(), e))?;
                    open.read_new(&mut |line, place| printer.line(line, place))?;
                }
            } else {
                // Rotated away: what it got before the rename is still to be read.
                open.read_new(&mut |line, place| printer.line(line, place))?;
                open.finish(&mut |line, place| printer.line(line, place))?;
                if let Some(first) = open.first.take() {
                    if retired.len() == MAX_RETIRED {
                        retired.remove(0);
                    }
                    retired.push(first);
                }
                active = None;
            }
        }
        if active.is_none() {
            active = catch_up(dir, &mut known, &mut retired, printer)?;
        }
        printer.flush().map_err(Stop::Write)?;
    }
}

/// The directory's files, and its active file opened, with no file older than it appearing
/// between the listing and the opening (a rotation in between would put one there, unseen).
fn open_newest(dir: &Path) -> io::Result<(Vec<String>, Option<Open>)> {
    let mut attempts = 0;
    loop {
        let names = list(dir)?;
        let Some(newest) = active_of(&names) else {
            return Ok((names, None));
        };
        let open = Open::at(&dir.join(newest));
        let again = list(dir)?;
        let before: BTreeSet<&str> = names.iter().map(|name| stem(name)).collect();
        let stable = again
            .iter()
            .filter(|name| stem(name) != stem(newest))
            .all(|name| before.contains(stem(name)));
        attempts += 1;
        if stable || attempts == MAX_ATTEMPTS {
            return Ok((names, open.ok()));
        }
    }
}

/// After the active file was rotated away (or before there was one): reads the files that
/// appeared since, oldest first, then opens the new active file, once no older file is
/// left unread.
fn catch_up(
    dir: &Path,
    known: &mut BTreeSet<String>,
    retired: &mut Vec<Vec<u8>>,
    printer: &mut Printer,
) -> Result<Option<Open>, Stop> {
    for _ in 0..MAX_ATTEMPTS {
        let Ok(names) = list(dir) else {
            return Ok(None);
        };
        let newest = active_of(&names);
        // By stem: a rotated file may be listed both plain and compressed.
        let newest_stem = newest.map(|name| stem(name));
        let fresh: BTreeSet<String> = names
            .iter()
            .map(|name| stem(name))
            .filter(|stem| Some(*stem) != newest_stem && !known.contains(*stem))
            .map(str::to_owned)
            .collect();
        for name in &fresh {
            if let Some(seen) = first_line(dir, name)
                .and_then(|first| retired.iter().position(|done| *done == first))
            {
                retired.remove(seen);
                continue;
            }
            let mut all = LastEntries::new(usize::MAX);
            read_stem(dir, name, printer, &mut all)?;
            show_all(printer, all)?;
        }
        known.extend(fresh);
        let Some(name) = newest else {
            return Ok(None);
        };
        let Ok(mut open) = Open::at(&dir.join(name)) else {
            return Ok(None);
        };
        // A rotation since the listing: read what it left first.
        let again = list(dir).unwrap_or_default();
        if again
            .iter()
            .any(|other| stem(other) != stem(name) && !known.contains(stem(other)))
        {
            continue;
        }
        known.insert(stem(name).to_owned());
        let seen =
            first_line(dir, name).and_then(|first| retired.iter().position(|done| *done == first));
        if let Some(seen) = seen {
            // The rotated file under its new name, its successor not created yet: read
            // already through its handle.
            retired.remove(seen);
            return Ok(None);
        }
        open.read_new(&mut |line, place| printer.line(line, place))?;
        return Ok(Some(open));
    }
    Ok(None)
}

fn show_all(printer: &mut Printer, last: LastEntries) -> Result<(), Stop> {
    for entry in last.into_entries() {
        printer.show(&entry).map_err(Stop::Write)?;
    }
    printer.flush().map_err(Stop::Write)
}

/// Reads a whole (rotated, maybe compressed) file into `last`.
fn read_whole(path: &Path, printer: &Printer, last: &mut LastEntries) -> Result<(), Stop> {
    let broken = verify::for_each_line(path, &mut |location, line| {
        if let Some(entry) = printer.judge(line, || location.to_string()) {
            last.push(entry);
        }
    })
    .map_err(|e| Stop::Read(path.to_owned(), io::Error::other(e)))?;
    if let Some((location, error)) = broken {
        eprintln!("oauth-audit: {location}: cannot be read: {error}");
    }
    Ok(())
}

/// Reads the file of `stem` in `dir`: compressed if it is by now, else as it is.
fn read_stem(
    dir: &Path,
    stem: &str,
    printer: &Printer,
    last: &mut LastEntries,
) -> Result<(), Stop> {
    let compressed = dir.join(format!("{stem}.gz"));
    let plain = dir.join(stem);
    let path = if compressed.is_file() {
        compressed
    } else {
        plain
    };
    match read_whole(&path, printer, last) {
        // Compressed and removed between the listing and now: the .gz has it.
        Err(Stop::Read(..)) if !path.exists() => {
            read_whole(&dir.join(format!("{stem}.gz")), printer, last)
        }
        other => other,
    }
}

/// The `.jsonl` and `.jsonl.gz` files of `dir`, in name order.
fn list(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && (name.ends_with(".jsonl") || name.ends_with(".jsonl.gz")) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// The file being written: the last `.jsonl` in name order.
fn active_of(names: &[String]) -> Option<&String> {
    names.iter().rev().find(|name| name.ends_with(".jsonl"))
}

/// A file's name without `.gz`: the same for a rotated file before and after compression.
fn stem(name: &str) -> &str {
    name.strip_suffix(".gz").unwrap_or(name)
}

/// The first line of the file of `stem` in `dir` (compressed or not), when it has one.
fn first_line(dir: &Path, stem: &str) -> Option<Vec<u8>> {
    use std::io::BufRead as _;
    let read = |path: &Path| -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        let file = io::BufReader::new(File::open(path)?);
        if is_gzip(path)? {
            io::BufReader::new(flate2::bufread::MultiGzDecoder::new(file))
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)?;
        } else {
            file.take(MAX_LINE as u64).read_until(b'\n', &mut line)?;
        }
        Ok(line)
    };
    // Compressed and removed between two tries: the .gz is there by the third.
    let compressed = dir.join(format!("{stem}.gz"));
    let line = read(&compressed)
        .or_else(|_| read(&dir.join(stem)))
        .or_else(|_| read(&compressed))
        .ok()?;
    let line = line.strip_suffix(b"\n").unwrap_or(&line).to_vec();
    (!line.is_empty()).then_some(line)
}

fn is_gzip(path: &Path) -> io::Result<bool> {
    let mut magic = [0u8; 2];
    let mut file = File::open(path)?;
    let mut read = 0;
    while read < 2 {
        match file.read(&mut magic[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(read == 2 && magic == [0x1f, 0x8b])
}

/// Called with each line and, lazily, its place (`file:line`).
type EachLine<'a> = dyn FnMut(&[u8], &dyn Fn() -> String) -> io::Result<()> + 'a;

/// A file being read as it grows.
struct Open {
    path: PathBuf,
    /// Its file name, for the places of malformed lines.
    name: String,
    file: File,
    identity: Option<(u64, u64)>,
    /// Bytes read so far.
    pos: u64,
    /// The start of a line whose end was not written yet.
    partial: Vec<u8>,
    /// The rest of an overlong line is being skipped.
    skipping: bool,
    /// Lines read so far.
    lines: u64,
    /// The first of them: what the file is recognised by once rotated.
    first: Option<Vec<u8>>,
}

impl Open {
    fn at(path: &Path) -> io::Result<Open> {
        let file = File::open(path)?;
        let identity = identity(&file.metadata()?);
        Ok(Open {
            path: path.to_owned(),
            name: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            file,
            identity,
            pos: 0,
            partial: Vec::new(),
            skipping: false,
            lines: 0,
            first: None,
        })
    }

    /// Whether the file now at this path (`now`) is another one.
    fn replaced_by(&self, now: &Metadata) -> bool {
        let now = identity(now);
        now.is_some() && now != self.identity
    }

    fn rewind(&mut self) -> io::Result<()> {
        use std::io::Seek as _;
        self.file.seek(io::SeekFrom::Start(0))?;
        self.pos = 0;
        self.partial.clear();
        self.skipping = false;
        self.lines = 0;
        self.first = None;
        Ok(())
    }

    /// Calls `each` with every line completed since the last call.
    fn read_new(&mut self, each: &mut EachLine<'_>) -> Result<(), Stop> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match self.file.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Stop::Read(self.path.clone(), e)),
            };
            self.pos += n as u64;
            let mut rest = &buf[..n];
            while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                if self.skipping {
                    self.skipping = false;
                } else {
                    self.partial.extend_from_slice(&rest[..end]);
                    self.emit(each)?;
                }
                rest = &rest[end + 1..];
            }
            if !self.skipping {
                self.partial.extend_from_slice(rest);
                if self.partial.len() > MAX_LINE {
                    // No event is this long: shown (as the malformed line it is) cut.
                    self.partial.truncate(MAX_LINE);
                    self.emit(each)?;
                    self.skipping = true;
                }
            }
        }
    }

    /// The file will not grow any more: its last line, even without a line end.
    fn finish(&mut self, each: &mut EachLine<'_>) -> Result<(), Stop> {
        if !self.partial.is_empty() {
            self.emit(each)?;
        }
        Ok(())
    }

    fn emit(&mut self, each: &mut EachLine<'_>) -> Result<(), Stop> {
        self.lines += 1;
        if self.first.is_none() {
            self.first = Some(self.partial.clone());
        }
        let (name, number) = (&self.name, self.lines);
        let line = std::mem::take(&mut self.partial);
        let result = each(&line, &|| format!("{name}:{number}"));
        self.partial = line;
        self.partial.clear();
        result.map_err(Stop::Write)
    }
}

#[cfg(unix)]
fn identity(metadata: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    Some((metadata.dev(), metadata.ino()))
}

/// Elsewhere a replaced file is noticed only when it is shorter than what was read.
#[cfg(not(unix))]
fn identity(_: &Metadata) -> Option<(u64, u64)> {
    None
}
