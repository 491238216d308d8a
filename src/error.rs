/// A configuration mistake, found when the layer or auditor is built, never per request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An auditor needs at least one writer.
    #[error("an Auditor needs at least one writer: add one with AuditorBuilder::writer")]
    NoWriter,
    /// Background tasks need a Tokio runtime.
    #[error("no Tokio runtime: build the Auditor inside a Tokio runtime (e.g. in #[tokio::main])")]
    NoRuntime,
    /// A trusted proxy entry is not an IP address or CIDR block.
    #[error("trusted proxy {value:?} is not an IP address or CIDR block (e.g. 10.0.0.0/8)")]
    TrustedProxy {
        /// The rejected entry.
        value: String,
    },
    /// A setting has a value it cannot take.
    #[error("{setting}: {problem}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(setting: &'static str, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            setting,
            problem: problem.into(),
        }
    }
}
