//! `oauth-audit keygen`: a new Ed25519 key pair for signing checkpoints, in the C2SP
//! signed-note text forms (`docs/integrity.md`).

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use oauth_audit::chain::SigningKey;

use crate::Failure;

/// Flags of `oauth-audit keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key's name, carried in every signature (e.g. orders-api-2026): no spaces or '+'.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Where to write: PREFIX.key (the private key, mode 0600) and PREFIX.pub (the public
    /// key, for `verify --key`). Existing files are never overwritten.
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
}

/// `PREFIX` + `suffix`, keeping any dots already in the prefix.
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(prefix.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates `path` with `text`, failing if it exists. A file that could not be written whole
/// (a full disk) is removed again: left behind, half a key would make the next run refuse
/// to overwrite it.
fn create(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = std::fs::remove_file(path);
    }
    written
}

/// Writes the key pair; refuses to touch existing files.
pub fn run(args: KeygenArgs) -> Result<(), Failure> {
    let key = SigningKey::generate(&args.name).map_err(|e| Failure::Usage(e.to_string()))?;
    let private = with_suffix(&args.out, ".key");
    let public = with_suffix(&args.out, ".pub");
    for path in [&private, &public] {
        // symlink_metadata: a dangling link is a file in the way too.
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(Failure::Usage(format!(
                "{} exists; refusing to overwrite it (choose another --out)",
                path.display()
            )));
        }
    }
    create(&private, &format!("{}\n", key.encode()), 0o600)
        .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", private.display())))?;
    let verifying = key.verifying_key().encode();
    if let Err(e) = create(&public, &format!("{verifying}\n"), 0o644) {
        // Half a pair is of no use: take the private key back out.
        let _ = std::fs::remove_file(&private);
        return Err(Failure::Runtime(format!(
            "cannot write {}: {e}",
            public.display()
        )));
    }
    println!(
        "wrote {} (private: keep it secret) and {}\npublic key: {verifying}",
        private.display(),
        public.display()
    );
    Ok(())
}
