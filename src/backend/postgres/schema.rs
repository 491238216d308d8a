//! The layout at start-up, step by step: lock, create what is missing, refuse what this
//! version cannot write to, migrate older tables, record the retention. The SQL text of the
//! layout itself is in `ddl.rs`.
//!
//! Everything runs in one transaction under an advisory lock, so several writers may start
//! together. A table already at [`SCHEMA_VERSION`] gets no DDL at all, so a writer that does
//! not own it (granted only `INSERT`, `SELECT` and the maintenance functions) starts as well.

use std::time::Duration;

use postgres_protocol::escape::escape_identifier;
use tokio_postgres::Client;

use super::classify::{Failure, SchemaProblem};
use super::ddl;
use super::settings::{Partitioning, Settings, NAME, SCHEMA_VERSION, VERSIONS_TABLE};

/// The names one start-up works on, quoted once.
struct Names<'a> {
    settings: &'a Settings,
    /// `"schema"."table"`.
    qualified: String,
    /// `"schema"."oauth_audit_schema"`.
    versions: String,
}

/// What `oauth_audit_schema` records for the table.
struct Recorded {
    version: i32,
    partitioning: String,
}

/// Creates, migrates or checks the layout of the events table, in one transaction.
pub(super) async fn ensure(client: &Client, settings: &Settings) -> Result<(), Failure> {
    let names = Names {
        settings,
        qualified: ddl::qualified(&settings.schema, &settings.table),
        versions: ddl::qualified(&settings.schema, VERSIONS_TABLE),
    };
    client.batch_execute("BEGIN").await?;
    match ensure_in_transaction(client, &names).await {
        Ok(()) => {
            client.batch_execute("COMMIT").await?;
            Ok(())
        }
        Err(error) => {
            // The error that matters is the one that made us roll back.
            let _ = client.batch_execute("ROLLBACK").await;
            Err(error)
        }
    }
}

async fn ensure_in_transaction(client: &Client, names: &Names<'_>) -> Result<(), Failure> {
    let settings = names.settings;
    lock_schema(client, &settings.schema).await?;
    ensure_namespace(client, &settings.schema).await?;
    ensure_versions_table(client, names).await?;
    match recorded_layout(client, names).await? {
        Some(recorded) => check_recorded(client, names, recorded).await?,
        None => create_events_table(client, names).await?,
    }
    if let Some(retention) = settings.retention {
        record_retention(client, names, retention).await?;
    }
    Ok(())
}

/// Serialises schema changes until the transaction ends: one lock per schema, as the tables
/// of a schema share the versions table and the trigger function.
async fn lock_schema(client: &Client, schema: &str) -> Result<(), Failure> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&lock_key(schema)],
        )
        .await?;
    Ok(())
}

/// The advisory lock's key; `oauth_audit_create_partition` takes the same one.
fn lock_key(schema: &str) -> String {
    format!("oauth_audit:{schema}")
}

/// Creates the schema when missing; looked up first so that a writer without `CREATE` on the
/// database starts when the schema exists.
async fn ensure_namespace(client: &Client, schema: &str) -> Result<(), Failure> {
    let exists = client
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                escape_identifier(schema)
            ))
            .await?;
    }
    Ok(())
}

/// Creates `oauth_audit_schema` when missing.
async fn ensure_versions_table(client: &Client, names: &Names<'_>) -> Result<(), Failure> {
    if !relation_exists(client, &names.versions).await? {
        client
            .batch_execute(&ddl::versions_table(&names.settings.schema))
            .await?;
    }
    Ok(())
}

async fn relation_exists(client: &Client, qualified: &str) -> Result<bool, Failure> {
    Ok(client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&qualified])
        .await?
        .try_get::<_, bool>(0)?)
}

/// The version and partitioning recorded for the table, if oauth-audit created it.
async fn recorded_layout(client: &Client, names: &Names<'_>) -> Result<Option<Recorded>, Failure> {
    let row = client
        .query_opt(
            &format!(
                "SELECT version, partitioning FROM {} WHERE table_name = $1",
                names.versions
            ),
            &[&names.settings.table],
        )
        .await?;
    match row {
        Some(row) => Ok(Some(Recorded {
            version: row.try_get(0)?,
            partitioning: row.try_get(1)?,
        })),
        None => Ok(None),
    }
}

/// Refuses a table recorded by a newer version or with other partitioning; migrates an
/// older one.
async fn check_recorded(
    client: &Client,
    names: &Names<'_>,
    recorded: Recorded,
) -> Result<(), Failure> {
    let configured = names.settings.partitioning.as_str();
    if recorded.version > SCHEMA_VERSION {
        return Err(Failure::Schema(SchemaProblem::Newer {
            table: names.qualified.clone(),
            version: recorded.version,
        }));
    }
    if recorded.partitioning != configured {
        return Err(Failure::Schema(SchemaProblem::Partitioning {
            table: names.qualified.clone(),
            recorded: recorded.partitioning,
            configured,
        }));
    }
    if recorded.version < SCHEMA_VERSION {
        migrate(client, names, recorded.version).await?;
    }
    Ok(())
}

/// Creates the functions, the events table and its record; refuses a table of that name
/// that oauth-audit did not create.
async fn create_events_table(client: &Client, names: &Names<'_>) -> Result<(), Failure> {
    let settings = names.settings;
    if relation_exists(client, &names.qualified).await? {
        return Err(Failure::Schema(SchemaProblem::Foreign {
            table: names.qualified.clone(),
        }));
    }
    client
        .batch_execute(&ddl::functions(&settings.schema))
        .await?;
    client
        .batch_execute(&ddl::events_table(
            &settings.schema,
            &settings.table,
            settings.partitioning != Partitioning::None,
        ))
        .await?;
    client
        .execute(
            &format!(
                "INSERT INTO {} (table_name, version, partitioning) VALUES ($1, $2, $3)",
                names.versions
            ),
            &[
                &settings.table,
                &SCHEMA_VERSION,
                &settings.partitioning.as_str(),
            ],
        )
        .await?;
    Ok(())
}

/// Whether the connected role owns `qualified`: only the owner migrates the table and
/// records its retention.
async fn owns(client: &Client, qualified: &str) -> Result<bool, Failure> {
    Ok(client
        .query_one(
            "SELECT coalesce(pg_get_userbyid(relowner) = current_user, false) \
             FROM pg_class WHERE oid = to_regclass($1)",
            &[&qualified],
        )
        .await?
        .try_get::<_, bool>(0)?)
}

/// Migrates a table recorded at `from` to [`SCHEMA_VERSION`], inside the caller's transaction.
async fn migrate(client: &Client, names: &Names<'_>, from: i32) -> Result<(), Failure> {
    let settings = names.settings;
    if !owns(client, &names.qualified).await? {
        return Err(Failure::Schema(SchemaProblem::NeedsOwner {
            table: names.qualified.clone(),
            version: from,
        }));
    }
    // Version 1 let any session that set `oauth_audit.retention_cutoff` delete rows; the new
    // trigger body replaces it for the table and all its partitions at once.
    client
        .batch_execute(&ddl::versions_table_v2(&settings.schema))
        .await?;
    client
        .batch_execute(&ddl::functions(&settings.schema))
        .await?;
    client
        .execute(
            &format!(
                "UPDATE {} SET version = $2, updated_at = now() WHERE table_name = $1",
                names.versions
            ),
            &[&settings.table, &SCHEMA_VERSION],
        )
        .await?;
    tracing::info!(
        backend = NAME,
        table = %names.qualified,
        from,
        to = SCHEMA_VERSION,
        "migrated the audit table's layout"
    );
    Ok(())
}

/// Records the configured retention, which the database itself enforces, when the connected
/// role owns the table; otherwise warns when the owner recorded something else.
async fn record_retention(
    client: &Client,
    names: &Names<'_>,
    retention: Duration,
) -> Result<(), Failure> {
    let table = &names.settings.table;
    let versions = &names.versions;
    let seconds = retention.as_secs_f64();
    let same = client
        .query_one(
            &format!(
                "SELECT coalesce(bool_or(retention = make_interval(secs => $2)), false) \
                 FROM {versions} WHERE table_name = $1"
            ),
            &[table, &seconds],
        )
        .await?
        .try_get::<_, bool>(0)?;
    if same {
        return Ok(());
    }
    if owns(client, &names.qualified).await? {
        client
            .execute(
                &format!(
                    "UPDATE {versions} SET retention = make_interval(secs => $2), updated_at = now() \
                     WHERE table_name = $1"
                ),
                &[table, &seconds],
            )
            .await?;
    } else {
        tracing::warn!(
            backend = NAME,
            table = %names.qualified,
            configured = ?retention,
            "the retention configured here differs from the one the table's owner recorded, which is the one applied: \
             configure it on a writer that connects as the owner"
        );
    }
    Ok(())
}
