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
//! (Kubernetes' `fsGroup` makes every file group-writable) may require.
//!
//! The file must also have one name only (a link count of 1). A hard link passes the owner
//! check, being the same file: whoever can create files in the directory (on a system
//! without `fs.protected_hardlinks`, or with access to a file of the auditor's user) could
//! name `audit.jsonl` after another file the auditor's user owns (`~/.ssh/authorized_keys`,
//! a configuration, the chain's key) and have the trail's lines, which carry what clients
//! send, appended to it; or have it read back, compressed into the trail and removed; or
//! keep a name of their own for the trail that outlives its rotation or removal. The check
//! applies to every open through this module, for writing and for reading back: nothing in
//! the crate links files (rotation and the spool's cursor rename, which keeps one name),
//! so the auditor's own files always have one. A file truncated when written (a rotation's
//! temporary file, the spool cursor's) is opened without `O_TRUNC` and emptied only once
//! checked, so a refused one is left as it was. A link made to a file already open (the
//! JSON-lines file, the active file) is not seen until that file is opened again (a rotated
//! file read back to compress, a spool segment replayed), where it is refused like any other.
//!
//! A file the auditor creates passes by construction. Exempt are the system's links to the
//! process's own open files ([`crate::no_follow::is_standard_stream`]) and character devices
//! (`/dev/null`, `/dev/full`), which only the system creates. It depends on nothing in the
//! crate but `no_follow`.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Opens `path` as [`crate::no_follow::open`] does, then refuses the file unless it is a
/// regular file with one link that this process's user owns and, with `allowed_mode` (the
/// configured mode files are created with), neither its group nor others may write it beyond
/// that. `options` should not truncate: the open would empty a file before it is refused.
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

/// Refuses the open `file` (at `path`) unless it is a regular file with one link (no other
/// name) that this process's effective user owns, which neither group nor others may write
/// beyond `allowed_mode`, if given.
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
    if metadata.nlink() != 1 {
        return Err(refused(format!(
            "has {} links (names in the file system), not 1: whoever made its other name \
             could have the auditor write into, or read back, another file of this user, or \
             keep the trail under a name of their own past its rotation or removal, so it is \
             never used (remove it, or its other names if it is the trail's own, or \
             configure the file's real path)",
            metadata.nlink()
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

    /// A trail file that is a second name of another file (here one the process owns, as
    /// `~/.ssh/authorized_keys` would be) is refused, for writing and for reading back; once
    /// the other name is gone, the file is the trail's alone and passes.
    #[test]
    fn a_hard_link_is_refused_until_its_other_names_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("authorized_keys");
        std::fs::write(&other, "ssh-ed25519 AAAA operator\n").unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::hard_link(&other, &path).unwrap();

        for error in [
            open(&append(), &path, Some(0o600)).unwrap_err(),
            open_read(&path, Some(0o600)).unwrap_err(),
        ] {
            let message = error.to_string();
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied, "{message}");
            assert!(
                message.starts_with(&path.display().to_string()) && message.contains("2 links"),
                "{message}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(&other).unwrap(),
            "ssh-ed25519 AAAA operator\n"
        );

        std::fs::remove_file(&other).unwrap();
        open(&append(), &path, Some(0o600)).unwrap();
        open_read(&path, Some(0o600)).unwrap();
    }
}
