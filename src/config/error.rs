//! What can go wrong when a configuration is built.

use std::path::PathBuf;

/// A configuration that deserialized but does not build: a missing secret, settings that
/// contradict each other, a sink whose cargo feature is off, a file that cannot be opened.
///
/// Messages name the sink and the setting, never a secret's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A `*_env` setting names a variable that is not set.
    #[error("{setting}: the environment variable {variable} is not set (or not UTF-8)")]
    MissingEnv {
        /// The sink and key, e.g. `writer (postgres) url_env`.
        setting: String,
        /// The variable's name.
        variable: String,
    },
    /// A setting, or a combination of settings, cannot be used.
    #[error("{context}: {message}")]
    Invalid {
        /// Where: the sink, e.g. `writer (postgres)`.
        context: String,
        /// What is wrong.
        message: String,
    },
    /// The configuration names a sink this build of the crate does not have.
    #[error("writer type \"{sink}\": this oauth-audit was built without the `{sink}` feature")]
    FeatureDisabled {
        /// The sink's `type`, which is also the cargo feature's name.
        sink: &'static str,
    },
    /// A JSON-lines file cannot be opened (a run-time condition rather than a wrong value:
    /// a directory that does not exist yet, permissions). The source names the file.
    #[error("cannot open a file for events: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl BuildError {
    pub(crate) fn invalid(context: impl Into<String>, message: impl ToString) -> Self {
        BuildError::Invalid {
            context: context.into(),
            message: message.to_string(),
        }
    }
}
