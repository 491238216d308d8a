//! Refusing a trail file that someone else owns, or that others may write.
//!
//! Whoever can create files in a log, spool or state directory could pre-create the file the
//! auditor is about to open (the active trail file, a rotation's temporary file, a spool
//! segment, the chain's state) as their own, keep it open, and read or alter everything
//! written into it; or plant a file of forged events for the auditor to read back as its
//! own. So every such file, once opened (without following a link: [`crate::no_follow`]),
//! must be a regular file owned by the process's effective user, which, when the file has a
//! configured mode (a writer's `mode`), neither its group nor others may write beyond what
//! that mode allows. Otherwise the open is an error that names the file and its owner.
//! Files without a mode setting (the spool's, the chain's) are created `0600` in a private
//! directory; their permissions are left to the operator, as a volume's group ownership
//! (Kubernetes' `fsGroup` makes every file group-writable) may require. A file the auditor creates passes by
//! construction. Exempt are the system's links to the process's own open files
//! ([`crate::no_follow::is_standard_stream`]) and character devices (`/dev/null`,
//! `/dev/full`), which only the system creates. It depends on nothing in the crate but
//! `no_follow`.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Opens `path` as [`crate::no_follow::open`] does, then refuses the file unless it is a
/// regular file this process's user owns and, with `allowed_mode` (the configured mode
/// files are created with), neither its group nor others may write it beyond that.
pub(crate) fn open(
    options: &OpenOptions,
    path: &Path,
    allowed_mode: Option<u32>,
) -> io::Result<File> {
    let file = crate::no_follow::open(options, path)?;
    if !crate::no_follow::is_standard_stream(path) {
        check(&file, path, allowed_mode)?;
    }
    Ok(file)
}

/// Opens `path` for reading as [`crate::no_follow::open_read`] does, with the checks of
/// [`open`]: for the auditor's own files read back (a spool segment, a rotated file).
pub(crate) fn open_read(path: &Path, allowed_mode: Option<u32>) -> io::Result<File> {
    let file = crate::no_follow::open_read(path)?;
    check(&file, path, allowed_mode)?;
    Ok(file)
}

/// Refuses the open `file` (at `path`) unless it is a regular file this process's effective
/// user owns, which neither group nor others may write beyond `allowed_mode`, if given.
#[cfg(unix)]
fn check(file: &File, path: &Path, allowed_mode: Option<u32>) -> io::Result<()> {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};

    let metadata = file.metadata()?;
    let kind = metadata.file_type();
    if kind.is_char_device() {
        return Ok(());
    }
    let refused = |why: String| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} {why}", path.display()),
        )
    };
    if !kind.is_file() {
        return Err(refused(
            "is not a regular file: audit files are never written or read back through one \
             (remove it, or configure the file's real path)"
                .to_owned(),
        ));
    }
    let user = rustix::process::geteuid().as_raw();
    if metadata.uid() != user {
        return Err(refused(format!(
            "is owned by uid {}, not by this process's user (uid {user}): whoever owns it could \
             read or alter the audit trail written into it, so it is never used (remove it, \
             or give it to uid {user} if it is the trail's own)",
            metadata.uid()
        )));
    }
    let Some(allowed_mode) = allowed_mode else {
        return Ok(());
    };
    let loose = metadata.mode() & 0o022 & !allowed_mode;
    if loose != 0 {
        return Err(refused(format!(
            "is writable by its {} (mode {:#o}), which the file's mode {allowed_mode:#o} does \
             not allow: they could alter the audit trail (chmod it, e.g. `chmod go-w`, or \
             configure the mode)",
            if loose & 0o020 != 0 && loose & 0o002 != 0 {
                "group and others"
            } else if loose & 0o020 != 0 {
                "group"
            } else {
                "others"
            },
            metadata.mode() & 0o7777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check(_: &File, _: &Path, _: Option<u32>) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn append() -> OpenOptions {
        let mut options = OpenOptions::new();
        crate::no_follow::no_follow(options.append(true).create(true));
        options
    }

    #[test]
    fn devices_and_the_standard_streams_are_not_trail_files_of_anyone() {
        for path in ["/dev/null", "/dev/stderr", "/proc/self/fd/2"] {
            open(&append(), Path::new(path), Some(0o600)).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }

    #[test]
    fn a_directory_is_no_file_to_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let error = open_read(dir.path(), None).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }

    #[test]
    fn a_file_this_process_creates_passes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut options = append();
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o660);
        open(&options, &path, Some(0o660)).unwrap();
        open_read(&path, Some(0o660)).unwrap();
    }
}
