//! Opening the files the auditor writes without following a symbolic link.
//!
//! Whoever can write to a log, spool or state directory could otherwise plant a symbolic link
//! where the auditor's file should be, and make the audit trail overwrite or append to another
//! file (or copy another file's contents into the trail). Every file the crate writes, and
//! every file of its own that it reads back (spool segments, rotated files it compresses), is
//! opened with `O_NOFOLLOW` on the last component of its path: a symbolic link there is an
//! error that names the file, never a silent follow. Directories above it may still be links
//! (`/var/log` often is). Renames and removals act on the link itself, never on its target.
//! A leaf: it depends on nothing in the crate.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Makes `options` refuse a symbolic link as the path's last component (Unix only; elsewhere
/// unchanged), and never wait for a named pipe's other end: opened without one, a pipe is an
/// error at once rather than a writer blocked until someone reads (`O_NONBLOCK`, which
/// changes nothing for a regular file).
pub(crate) fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(options, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    options
}

/// Opens `path` with `options`, which [`no_follow`] configured; a symbolic link there gives an
/// error that says so (the operating system's own, "Too many levels of symbolic links", does
/// not), and so does a named pipe or a socket, whose other end, not a file, would get (or
/// give) the trail. A [standard stream](is_standard_stream) is opened through its link.
pub(crate) fn open(options: &OpenOptions, path: &Path) -> io::Result<File> {
    if is_standard_stream(path) {
        let mut following = options.clone();
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut following, 0);
        return following.open(path);
    }
    let file = options
        .open(path)
        .map_err(|error| refused_link(path, error))?;
    if is_pipe(&file.metadata()?) {
        return Err(refused_pipe(path, io::ErrorKind::InvalidInput));
    }
    Ok(file)
}

/// Whether `metadata` is a named pipe's or a socket's.
fn is_pipe(metadata: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = metadata.file_type();
        kind.is_fifo() || kind.is_socket()
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        false
    }
}

/// The error for a named pipe or socket at `path`.
fn refused_pipe(path: &Path, kind: io::ErrorKind) -> io::Error {
    io::Error::new(
        kind,
        format!(
            "{} is a named pipe or a socket, not a file: audit files are never written or read \
             through one (remove it, or configure the file's real path)",
            path.display()
        ),
    )
}

/// Whether `path` is one of the links the system makes to the process's own open files:
/// `/dev/stdout`, `/dev/stderr`, `/dev/fd/N` and `/proc/self/fd/N`, which are symbolic
/// links (to `/proc/self/fd/N`, itself a link to whatever the descriptor is). Nobody but the
/// system creates them, in directories only it writes to, and they name where the process's
/// output already goes: a trail written there (a container's standard error) is meant to
/// follow them. Compared as written, whole: `/tmp/dev/stderr` or `/dev/shm/x` is no such link.
pub(crate) fn is_standard_stream(path: &Path) -> bool {
    let Some(path) = path.to_str() else {
        return false;
    };
    let descriptor = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    matches!(path, "/dev/stdout" | "/dev/stderr")
        || path.strip_prefix("/dev/fd/").is_some_and(descriptor)
        || path.strip_prefix("/proc/self/fd/").is_some_and(descriptor)
}

/// Opens `path` for reading, refusing a symbolic link.
pub(crate) fn open_read(path: &Path) -> io::Result<File> {
    open(no_follow(OpenOptions::new().read(true)), path)
}

/// `error`, or when `path` is a symbolic link (or a named pipe nobody reads: `ENXIO`), an
/// error of the same kind that says so.
fn refused_link(path: &Path, error: io::Error) -> io::Error {
    let metadata = std::fs::symlink_metadata(path);
    if metadata.as_ref().is_ok_and(is_pipe) {
        return refused_pipe(path, error.kind());
    }
    if metadata.is_ok_and(|m| m.file_type().is_symlink()) {
        io::Error::new(
            error.kind(),
            format!(
                "{} is a symbolic link: audit files are never written or read through one \
                 (remove it, or configure the file's real path)",
                path.display()
            ),
        )
    } else {
        error
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "kept\n").unwrap();
        let link = dir.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();

        let error = open(
            no_follow(OpenOptions::new().append(true).create(true)),
            &link,
        )
        .unwrap_err();
        assert!(error.to_string().contains("is a symbolic link"), "{error}");
        assert!(open_read(&link).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept\n");
    }

    #[test]
    fn a_named_pipe_is_refused_at_once_whether_or_not_someone_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("audit.jsonl");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Each open in a thread of its own: one that waits for the pipe's other end would
        // hang the test rather than fail it.
        let opened = |options: fn() -> OpenOptions| {
            let path = fifo.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(open(&options(), &path).map(drop));
            });
            rx.recv_timeout(std::time::Duration::from_secs(5))
                .expect("the open waited for the pipe's other end")
        };
        let append = || {
            let mut options = OpenOptions::new();
            no_follow(options.append(true).create(true));
            options
        };
        let read = || {
            let mut options = OpenOptions::new();
            no_follow(options.read(true));
            options
        };
        // Nobody reads it: refused at once, not waited on.
        let error = opened(append).unwrap_err();
        assert!(error.to_string().contains("named pipe"), "{error}");
        // Someone reads it (whoever planted it, to get the trail): refused all the same, and
        // so is reading one back as a spool segment or a rotated file.
        let mut reader = OpenOptions::new();
        std::os::unix::fs::OpenOptionsExt::custom_flags(reader.read(true), libc::O_NONBLOCK);
        let _reader = reader.open(&fifo).unwrap();
        let error = opened(append).unwrap_err();
        assert!(error.to_string().contains("named pipe"), "{error}");
        let error = opened(read).unwrap_err();
        assert!(error.to_string().contains("named pipe"), "{error}");
        // A regular file is opened as before.
        let file = dir.path().join("kept.jsonl");
        open(&append(), &file).unwrap();
        assert!(std::fs::metadata(&file).unwrap().is_file());
    }

    #[test]
    fn the_systems_standard_stream_links_are_followed_and_only_they() {
        // Links the system made (`/dev/stderr` -> `/proc/self/fd/2` -> the descriptor's
        // file): a trail configured there goes where the process's standard error goes.
        let append = || {
            let mut options = OpenOptions::new();
            no_follow(options.append(true).create(true));
            options
        };
        for path in ["/dev/stderr", "/dev/fd/2", "/proc/self/fd/2"] {
            open(&append(), Path::new(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        for path in [
            "/dev/stderr/",
            "/dev/fd/",
            "/dev/fd/2x",
            "/proc/1/fd/2",
            "/tmp/dev/stderr",
            "dev/stderr",
        ] {
            assert!(!is_standard_stream(Path::new(path)), "{path}");
        }
        // A link planted under the same name elsewhere is still refused.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dev")).unwrap();
        let planted = dir.path().join("dev").join("stderr");
        std::os::unix::fs::symlink(dir.path().join("target"), &planted).unwrap();
        let error = open(&append(), &planted).unwrap_err();
        assert!(error.to_string().contains("is a symbolic link"), "{error}");
    }
}
