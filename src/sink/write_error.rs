/// Why a writer could not write or flush a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// An I/O error (file, socket, pipe).
    #[error("audit writer I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// An event could not be serialised.
    #[error("audit event could not be serialised: {0}")]
    Serialize(#[from] serde_json::Error),
    /// Any other backend failure.
    #[error("audit backend failed: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl WriteError {
    /// Wraps any backend error.
    pub fn backend(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        WriteError::Backend(err.into())
    }
}
