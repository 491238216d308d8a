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
/// unchanged).
pub(crate) fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(options, libc::O_NOFOLLOW);
    options
}

/// Opens `path` with `options`, which [`no_follow`] configured; a symbolic link there gives an
/// error that says so (the operating system's own, "Too many levels of symbolic links", does
/// not).
pub(crate) fn open(options: &OpenOptions, path: &Path) -> io::Result<File> {
    options
        .open(path)
        .map_err(|error| refused_link(path, error))
}

/// Opens `path` for reading, refusing a symbolic link.
pub(crate) fn open_read(path: &Path) -> io::Result<File> {
    open(no_follow(OpenOptions::new().read(true)), path)
}

/// `error`, or when `path` is a symbolic link, an error of the same kind that says so.
fn refused_link(path: &Path, error: io::Error) -> io::Error {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
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
}
