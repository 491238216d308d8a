//! A PostgreSQL events table named on the command line (`--postgres-url-env VAR --table
//! [SCHEMA.]TABLE`), as `verify` and `report` read it.

use crate::Failure;

/// Where the table is: the connection string (from the environment variable only: a
/// command line is visible to every user of the machine), its schema and its name.
pub struct Table<'a> {
    pub connection: String,
    pub schema: &'a str,
    pub name: &'a str,
}

impl<'a> Table<'a> {
    /// The table of `--postgres-url-env var --table table` (schema `public` unless named).
    pub fn from_args(var: &str, table: &'a str) -> Result<Table<'a>, Failure> {
        let connection = std::env::var(var).map_err(|_| {
            Failure::Usage(format!("--postgres-url-env: the variable {var} is not set"))
        })?;
        let (schema, name) = table.split_once('.').unwrap_or(("public", table));
        Ok(Table {
            connection,
            schema,
            name,
        })
    }
}

/// A runtime on this thread, for reading the table.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the Tokio runtime: {e}")))
}
