//! Reading a trail from files: JSON lines, plain or gzip-compressed (recognised by their
//! first bytes), and directories of rotated files, read in name order (which is time order
//! for [`RotatingFile`](crate::writer::RotatingFile): `audit-<time>.jsonl.gz`, then the
//! active `audit.jsonl`).

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::report::Location;
use super::verifier::Verifier;

/// A path that cannot be read as given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file or directory cannot be opened or listed.
    #[error("cannot read {path}: {error}")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A directory without any `.jsonl` or `.jsonl.gz` file.
    #[error("{0}: no .jsonl or .jsonl.gz files in this directory")]
    EmptyDirectory(PathBuf),
}

/// The files to read, in order: each path as given, a directory replaced by its `.jsonl`
/// and `.jsonl.gz` files in name order. Fails on a path that cannot be read.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for path in paths {
        let unreadable = |error| InputError::Unreadable {
            path: path.clone(),
            error,
        };
        let metadata = std::fs::metadata(path).map_err(unreadable)?;
        if !metadata.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = Vec::new();
        for entry in std::fs::read_dir(path).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            // Names compared as bytes (a name that is not UTF-8 is a file all the same), and
            // links followed: any file a glob such as `*.jsonl` would give a reader.
            let name = entry.file_name();
            let name = name.as_encoded_bytes();
            if !(name.ends_with(b".jsonl") || name.ends_with(b".jsonl.gz")) {
                continue;
            }
            let path_found = entry.path();
            let metadata =
                std::fs::metadata(&path_found).map_err(|error| InputError::Unreadable {
                    path: path_found.clone(),
                    error,
                })?;
            if metadata.is_file() {
                found.push(path_found);
            }
        }
        if found.is_empty() {
            return Err(InputError::EmptyDirectory(path.clone()));
        }
        found.sort();
        files.extend(found);
    }
    // A file named twice (a directory and a file in it) is read once: its events would be
    // counted twice, and a chain would see each of them again.
    let mut seen = std::collections::HashSet::new();
    files.retain(|file| seen.insert(std::fs::canonicalize(file).unwrap_or_else(|_| file.clone())));
    // The rotating writer compresses `x.jsonl` into `x.jsonl.gz`, which it renames into
    // place once whole, and only then removes `x.jsonl`: found both ways (a crash between
    // the two, or a listing at that moment), they are the same events. The archive is
    // read, the file that is about to go is not.
    let archives: std::collections::HashSet<PathBuf> = files
        .iter()
        .filter(|file| file.as_os_str().as_encoded_bytes().ends_with(b".jsonl.gz"))
        .cloned()
        .collect();
    files.retain(|file| archive_of(file).is_none_or(|archive| !archives.contains(&archive)));
    Ok(files)
}

/// The rotating writer's archive of `file` (`x.jsonl.gz` for `x.jsonl`), for a `.jsonl`
/// file.
fn archive_of(file: &Path) -> Option<PathBuf> {
    file.as_os_str()
        .as_encoded_bytes()
        .ends_with(b".jsonl")
        .then(|| {
            let mut archive = file.as_os_str().to_owned();
            archive.push(".gz");
            PathBuf::from(archive)
        })
}

/// Where a listed file's events are now: `file`, or its archive when the rotating writer
/// compressed it since it was listed (reading the files before it can take minutes: it
/// renames `x.jsonl.gz` into place, then removes `x.jsonl`). [`Lines::open`] reads a file
/// from here; a reader that names the files it read names this one.
pub fn settled(file: &Path) -> PathBuf {
    match archive_of(file) {
        Some(archive) if !file.exists() && archive.is_file() => archive,
        _ => file.to_owned(),
    }
}

/// The bytes of the files as stored (compressed size for compressed files): the total a
/// progress bar counts towards.
pub fn total_size(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// Counts the bytes read from the file itself (before decompression), for progress.
struct Counting<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// Reading buffers: large, since lines are short and many.
const BUFFER: usize = 1 << 20;
/// How often progress is reported, in bytes of the file.
const PROGRESS_STEP: u64 = 1 << 20;
/// The longest line handed on whole. An event is a few kilobytes; a longer line is not one,
/// and reading it whole would let a crafted file (a small archive that unpacks to gigabytes
/// without a line end) take all memory. Past this, the line's first bytes are handed on (to
/// fail as the event they are not, at their place) and the rest is skipped.
pub const MAX_LINE: usize = 1 << 20;

/// Feeds every line of `path` to `verifier`, each with its file and line number, and calls
/// `progress` with the number of file bytes read since its last call. A file that breaks
/// off (a damaged compressed file) is a problem in the report, not an error here.
pub fn read_file(
    path: &Path,
    verifier: &mut Verifier,
    progress: &mut dyn FnMut(u64),
) -> Result<(), InputError> {
    let broken = read_lines(path, progress, &mut |location, line, cut| {
        if cut {
            // What follows the first MiB is not checked, and a reader that does not cut
            // the line may see more there (a second event after a carriage return).
            verifier.unreadable(
                location,
                "the line is longer than 1 MiB: it is no event the chain wrote, and what \
                 follows its first MiB is not checked",
            );
        } else {
            verifier.push(location, line);
        }
    })?;
    if let Some((location, error)) = broken {
        verifier.unreadable(location, &error.to_string());
    }
    Ok(())
}

/// Feeds every line of a file of checkpoints kept outside the log (`checkpoint_file`) to
/// [`Verifier::add_checkpoint`].
pub fn read_checkpoints(path: &Path, verifier: &mut Verifier) -> Result<(), InputError> {
    let broken = read_lines(path, &mut |_| {}, &mut |location, line, _| {
        if !line.iter().all(u8::is_ascii_whitespace) {
            verifier.add_checkpoint(location, line)
        }
    })?;
    if let Some((location, error)) = broken {
        verifier.unreadable(location, &error.to_string());
    }
    Ok(())
}

/// Reads past the rest of a line, keeping none of it.
fn skip_line(reader: &mut dyn BufRead) -> io::Result<()> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|&byte| byte == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(());
            }
            None => {
                let all = buffer.len();
                reader.consume(all);
            }
        }
    }
}

/// Calls `each` with every line of a JSON-lines file, plain or gzip-compressed (without its
/// line end; a line longer than 1 MiB cut to its first MiB), and its place; returns where
/// and why reading broke off (a damaged compressed file), if it did. For other readers of a
/// trail (`oauth-audit report`, `oauth-audit tail`); [`Lines`] hands the lines out one at a
/// time instead.
pub fn for_each_line(
    path: &Path,
    each: &mut dyn FnMut(Location, &[u8]),
) -> Result<Option<(Location, io::Error)>, InputError> {
    read_lines(path, &mut |_| {}, &mut |location, line, _| {
        each(location, line)
    })
}

/// Calls `each` with every line (without its line end) and whether it was cut to its first
/// MiB; returns where and why reading broke off, if it did.
fn read_lines(
    path: &Path,
    progress: &mut dyn FnMut(u64),
    each: &mut dyn FnMut(Location, &[u8], bool),
) -> Result<Option<(Location, io::Error)>, InputError> {
    let mut lines = Lines::open(path)?;
    let mut reported = 0u64;
    loop {
        match lines.next_line() {
            Some(Ok(line)) => each(line.location, line.text, line.cut),
            Some(Err(broken)) => {
                progress(lines.bytes_read() - reported);
                return Ok(Some(broken));
            }
            None => break,
        }
        let read = lines.bytes_read();
        if read - reported >= PROGRESS_STEP {
            progress(read - reported);
            reported = read;
        }
    }
    progress(lines.bytes_read() - reported);
    Ok(None)
}

/// One line of a file read by [`Lines`].
#[derive(Debug)]
pub struct Line<'a> {
    /// The file's name and the line's number (from 1).
    pub location: Location,
    /// The line without its line end (`\n`, `\r\n`).
    pub text: &'a [u8],
    /// Whether the line was longer than 1 MiB and `text` is its first MiB only.
    pub cut: bool,
}

/// The lines of one JSON-lines file, plain or gzip-compressed, handed out one at a time: for
/// readers that take turns between files (`oauth-audit detect` merges several trails in
/// time order). [`for_each_line`] is the same reading, for one file at a time.
///
/// ```no_run
/// use oauth_audit::chain::verify::Lines;
///
/// let mut lines = Lines::open("audit.jsonl".as_ref())?;
/// while let Some(line) = lines.next_line() {
///     match line {
///         Ok(line) => println!("{}: {} bytes", line.location, line.text.len()),
///         Err((location, error)) => eprintln!("{location}: {error}"),
///     }
/// }
/// # Ok::<(), oauth_audit::chain::verify::InputError>(())
/// ```
pub struct Lines {
    reader: Box<dyn BufRead>,
    name: std::sync::Arc<str>,
    line: Vec<u8>,
    number: u64,
    read: Rc<Cell<u64>>,
    ended: bool,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines")
            .field("file", &self.name)
            .field("line", &self.number)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Lines {
    /// Opens `path`, or its archive when it was compressed since it was listed
    /// ([`settled`]); a file that starts with gzip's magic bytes is read decompressed.
    pub fn open(path: &Path) -> Result<Self, InputError> {
        let path = &settled(path);
        let unreadable = |error| InputError::Unreadable {
            path: path.to_owned(),
            error,
        };
        let file = File::open(path).map_err(unreadable)?;
        let read = Rc::new(Cell::new(0));
        let mut raw = BufReader::with_capacity(
            BUFFER,
            Counting {
                inner: file,
                read: read.clone(),
            },
        );
        let gzip = raw
            .fill_buf()
            .map_err(unreadable)?
            .starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn BufRead> = if gzip {
            Box::new(BufReader::with_capacity(
                BUFFER,
                flate2::bufread::MultiGzDecoder::new(raw),
            ))
        } else {
            Box::new(raw)
        };
        Ok(Lines {
            reader,
            name: Location::file_name(path),
            line: Vec::with_capacity(4096),
            number: 0,
            read,
            ended: false,
        })
    }

    /// The next line; `None` at the end of the file, and after the error where reading
    /// broke off (a damaged compressed file), with the place of the line it was reading.
    pub fn next_line(&mut self) -> Option<Result<Line<'_>, (Location, io::Error)>> {
        if self.ended {
            return None;
        }
        self.line.clear();
        let mut cut = false;
        let (reader, line) = (&mut self.reader, &mut self.line);
        let taken = reader
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', line)
            .and_then(|taken| {
                if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
                    line.truncate(MAX_LINE);
                    cut = true;
                    skip_line(reader)?;
                }
                Ok(taken)
            });
        match taken {
            Ok(0) => {
                self.ended = true;
                return None;
            }
            Ok(_) => {}
            Err(error) => {
                self.ended = true;
                return Some(Err((Location::line(&self.name, self.number + 1), error)));
            }
        }
        self.number += 1;
        let mut end = self.line.len();
        while end > 0 && matches!(self.line[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        Some(Ok(Line {
            location: Location::line(&self.name, self.number),
            text: &self.line[..end],
            cut,
        }))
    }

    /// The bytes read from the file itself so far (before decompression).
    pub fn bytes_read(&self) -> u64 {
        self.read.get()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A line cut at 1 MiB is no event: what follows its first MiB (here, after spaces and
    /// a carriage return, an event of its own to some readers) is not checked.
    #[test]
    fn a_line_cut_is_malformed_for_the_verifier() {
        let path =
            std::env::temp_dir().join(format!("oauth-audit-cut-{}.jsonl", uuid::Uuid::now_v7()));
        let mut line = br#"{"chain":{"seq":1,"stream":"s"},"kind":"ResourceAccessed"}"#.to_vec();
        line.resize(MAX_LINE + 10, b' ');
        line.extend_from_slice(b"\r{\"kind\":\"AccessDenied\"}\n");
        std::fs::write(&path, &line).unwrap();
        let mut verifier = Verifier::new(Vec::new());
        read_file(&path, &mut verifier, &mut |_| {}).unwrap();
        std::fs::remove_file(&path).unwrap();
        let report = verifier.finish();
        let malformed: Vec<_> = report
            .of_kind(crate::chain::verify::ProblemKind::Malformed)
            .collect();
        assert_eq!(malformed.len(), 1, "{report}");
        assert!(
            malformed[0].detail.contains("longer than 1 MiB"),
            "{report}"
        );
    }

    /// Every file a glob would give a reader: a name that is not UTF-8, a link to a file.
    #[cfg(unix)]
    #[test]
    fn a_directory_gives_every_jsonl_file_a_glob_would() {
        use std::os::unix::ffi::OsStrExt as _;

        let dir = std::env::temp_dir().join(format!("oauth-audit-dir-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir(&dir).unwrap();
        let outside = dir.with_extension("target");
        std::fs::write(&outside, "{}\n").unwrap();
        std::fs::write(dir.join("audit-1.jsonl"), "{}\n").unwrap();
        let odd = dir.join(std::ffi::OsStr::from_bytes(b"audit-2\xff.jsonl"));
        std::fs::write(&odd, "{}\n").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("audit-3.jsonl")).unwrap();
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        let files = expand(std::slice::from_ref(&dir)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_file(&outside).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().as_bytes().to_vec())
            .collect();
        assert_eq!(
            names,
            [
                &b"audit-1.jsonl"[..],
                b"audit-2\xff.jsonl",
                b"audit-3.jsonl"
            ],
            "{files:?}"
        );
    }

    /// A file named twice (a directory and a file in it), and a rotated file beside its
    /// archive, are listed once: the archive, which the rotating writer renames into place
    /// whole before it removes the file.
    #[test]
    fn a_file_named_twice_or_beside_its_archive_is_listed_once() {
        let dir = std::env::temp_dir().join(format!("oauth-audit-twice-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir(&dir).unwrap();
        for name in [
            "audit-1.jsonl",
            "audit-1.jsonl.gz",
            "audit-2.jsonl.gz",
            "audit.jsonl",
        ] {
            std::fs::write(dir.join(name), "{}\n").unwrap();
        }
        let files = expand(&[dir.clone(), dir.join("audit.jsonl")]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap()).collect();
        assert_eq!(
            names,
            ["audit-1.jsonl.gz", "audit-2.jsonl.gz", "audit.jsonl"]
        );
    }

    /// A listed `x.jsonl` that the rotating writer compressed before its turn came is read
    /// from `x.jsonl.gz`, and its lines are placed in the archive.
    #[test]
    fn a_file_compressed_since_it_was_listed_is_read_from_its_archive() {
        let dir = std::env::temp_dir().join(format!("oauth-audit-gone-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir(&dir).unwrap();
        let listed = dir.join("audit-1.jsonl");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(dir.join("audit-1.jsonl.gz")).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(b"{\"n\":1}\n").unwrap();
        gz.finish().unwrap();
        assert_eq!(settled(&listed), dir.join("audit-1.jsonl.gz"));
        let mut lines = Vec::new();
        let broken = for_each_line(&listed, &mut |location, line| {
            lines.push((location.to_string(), line.to_vec()));
        })
        .unwrap();
        // A file that is there is read as it is, whatever lies beside it.
        std::fs::write(&listed, "{}\n").unwrap();
        assert_eq!(settled(&listed), listed);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(broken.is_none());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].0.ends_with("audit-1.jsonl.gz:1"), "{lines:?}");
        assert_eq!(lines[0].1, b"{\"n\":1}");
    }

    #[test]
    fn a_line_too_long_is_cut_and_the_next_ones_still_read() {
        let path = std::env::temp_dir().join(format!(
            "oauth-audit-long-{}.jsonl.gz",
            uuid::Uuid::now_v7()
        ));
        // Gzip: 5 MiB without a line end are a few kilobytes on disk.
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(b"{\"first\":1}\n").unwrap();
        gz.write_all(&vec![b'x'; 5 << 20]).unwrap();
        gz.write_all(b"\n{\"last\":3}\n").unwrap();
        gz.finish().unwrap();
        let mut lines = Vec::new();
        let broken = for_each_line(&path, &mut |location, line| {
            lines.push((location.to_string(), line.len(), line.starts_with(b"{")));
        })
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(broken.is_none());
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[1].1, MAX_LINE, "cut to its first bytes");
        assert!(lines[1].0.ends_with(":2"));
        assert!(
            lines[2].0.ends_with(":3") && lines[2].2,
            "the next line whole: {lines:?}"
        );
    }
}
