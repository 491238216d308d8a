//! What the other files share and depend on, depending on none of them but `tls.rs`: the
//! checked settings, the partitioning they name, and the layout's fixed names and version.

use std::time::Duration;

use tokio_postgres::Config;

use super::tls::Tls;

/// The layout version this build creates and understands. 2: deletion is decided by the
/// database (owner and recorded retention), no longer unlocked by a session setting.
pub(super) const SCHEMA_VERSION: i32 = 2;
/// The table recording layout versions, next to the events table.
pub(super) const VERSIONS_TABLE: &str = "oauth_audit_schema";
/// The backend's name, in errors and logs.
pub(super) const NAME: &str = "postgres";
/// The default of [`PostgresBackendBuilder::connections`](super::PostgresBackendBuilder::connections).
pub(super) const DEFAULT_CONNECTIONS: usize = 2;
/// The most connections one backend may open.
pub(super) const MAX_CONNECTIONS: usize = 16;

/// What [`PostgresBackendBuilder::build`](super::PostgresBackendBuilder::build) checked,
/// shared by every session.
pub(super) struct Settings {
    pub(super) config: Config,
    pub(super) tls: Tls,
    pub(super) schema: String,
    pub(super) table: String,
    pub(super) partitioning: Partitioning,
    pub(super) retention: Option<Duration>,
    pub(super) timeout: Duration,
    /// The most connections one `send` spreads a batch over (1 to [`MAX_CONNECTIONS`]).
    pub(super) connections: usize,
}

/// How the events table is split by time.
///
/// ```
/// use oauth_audit::backend::{Partitioning, PostgresBackend};
///
/// let backend = PostgresBackend::builder("host=localhost user=audit sslmode=disable")
///     .partitioning(Partitioning::Daily)
///     .build()?;
/// # Ok::<(), oauth_audit::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Partitioning {
    /// One partition per UTC day (`<table>_p20261125`).
    Daily,
    /// One partition per UTC month (`<table>_p202611`).
    #[default]
    Monthly,
    /// A plain table; retention deletes rows.
    None,
}

impl Partitioning {
    /// The name recorded in `oauth_audit_schema`.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Partitioning::Daily => "daily",
            Partitioning::Monthly => "monthly",
            Partitioning::None => "none",
        }
    }
}
