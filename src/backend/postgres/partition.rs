//! Partitioning: the periods a partition covers, which partitions a session knows,
//! creating those a batch needs (through the owner's function) and running retention.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use postgres_protocol::escape::escape_identifier;
use tokio_postgres::Client;

use super::classify::{Failure, SchemaProblem};
use super::ddl;
use super::settings::{Partitioning, Settings, NAME};
use crate::delivery::EncodedEvent;

// The period arithmetic lives here, with the partitions it names; `settings.rs` only says
// which partitionings exist.
impl Partitioning {
    /// The first day of the partition holding `time`.
    pub(super) fn start_of(self, time: DateTime<Utc>) -> NaiveDate {
        let day = time.date_naive();
        match self {
            Partitioning::Monthly => day.with_day(1).unwrap_or(day),
            Partitioning::Daily | Partitioning::None => day,
        }
    }

    /// The first day after the partition starting at `start`.
    pub(super) fn end_of(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            Partitioning::Monthly => start.checked_add_months(Months::new(1)),
            Partitioning::Daily | Partitioning::None => start.succ_opt(),
        }
    }

    /// The partition name suffix `oauth_audit_create_partition` gives (checked in tests).
    #[cfg(test)]
    fn suffix(self, start: NaiveDate) -> String {
        match self {
            Partitioning::Monthly => start.format("%Y%m").to_string(),
            Partitioning::Daily | Partitioning::None => start.format("%Y%m%d").to_string(),
        }
    }

    fn parse_suffix(self, suffix: &str) -> Option<NaiveDate> {
        if !suffix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match self {
            Partitioning::Monthly if suffix.len() == 6 => {
                NaiveDate::parse_from_str(&format!("{suffix}01"), "%Y%m%d").ok()
            }
            Partitioning::Daily if suffix.len() == 8 => {
                NaiveDate::parse_from_str(suffix, "%Y%m%d").ok()
            }
            _ => None,
        }
    }
}

/// The partitions of the events table one session knows to exist, by their first day.
#[derive(Debug, Default)]
pub(super) struct Partitions {
    known: BTreeSet<NaiveDate>,
}

impl Partitions {
    /// Learns which partitions exist, from the catalog; none for a plain table.
    pub(super) async fn load(client: &Client, settings: &Settings) -> Result<Partitions, Failure> {
        let mut partitions = Partitions::default();
        if settings.partitioning != Partitioning::None {
            partitions.read_catalog(client, settings).await?;
        }
        Ok(partitions)
    }

    async fn read_catalog(&mut self, client: &Client, settings: &Settings) -> Result<(), Failure> {
        for name in partition_names(client, settings).await? {
            if let Some(start) = partition_start(&settings.table, &name, settings.partitioning) {
                self.known.insert(start);
            }
        }
        Ok(())
    }

    /// Creates the partitions for the current and the next period, so inserts around
    /// midnight (or the first of the month) find theirs in place.
    pub(super) async fn ensure_ahead(
        &mut self,
        client: &Client,
        settings: &Settings,
    ) -> Result<(), Failure> {
        let partitioning = settings.partitioning;
        if partitioning == Partitioning::None {
            return Ok(());
        }
        let now = partitioning.start_of(Utc::now());
        let mut wanted = vec![now];
        wanted.extend(partitioning.end_of(now));
        for start in wanted {
            self.create(client, settings, start).await?;
        }
        Ok(())
    }

    /// Creates the partitions the batch's events fall into, where not known to exist.
    pub(super) async fn ensure_for(
        &mut self,
        client: &Client,
        settings: &Settings,
        batch: &[EncodedEvent],
    ) -> Result<(), Failure> {
        let partitioning = settings.partitioning;
        if partitioning == Partitioning::None {
            return Ok(());
        }
        let missing: BTreeSet<NaiveDate> = batch
            .iter()
            .map(|event| partitioning.start_of(event_time(event)))
            .filter(|start| !self.known.contains(start))
            .collect();
        for start in missing {
            self.create(client, settings, start).await?;
        }
        Ok(())
    }

    /// Creates one partition, unless known to exist.
    async fn create(
        &mut self,
        client: &Client,
        settings: &Settings,
        start: NaiveDate,
    ) -> Result<(), Failure> {
        if self.known.contains(&start) {
            return Ok(());
        }
        if settings.partitioning.end_of(start).is_none() {
            return Err(Failure::Schema(SchemaProblem::OutOfRange(start)));
        }
        // Through the owner's function: a writer that does not own the table cannot create
        // partitions of it, and so cannot drop them either.
        client
            .execute(
                &format!(
                    "SELECT {}.oauth_audit_create_partition($1, $2)",
                    escape_identifier(&settings.schema)
                ),
                &[&settings.table, &start],
            )
            .await?;
        self.known.insert(start);
        Ok(())
    }

    /// Forgets the known partitions and reads them again: one was dropped behind the
    /// session's back (another writer's retention, an operator) or by its own retention.
    pub(super) async fn reload(
        &mut self,
        client: &Client,
        settings: &Settings,
    ) -> Result<(), Failure> {
        self.known.clear();
        self.read_catalog(client, settings).await
    }

    /// Runs the owner's retention function, which removes only what the retention recorded
    /// in `oauth_audit_schema` allows, whoever calls it.
    pub(super) async fn apply_retention(
        &mut self,
        client: &Client,
        settings: &Settings,
    ) -> Result<(), Failure> {
        let removed: i64 = client
            .query_one(
                &format!(
                    "SELECT {}.oauth_audit_retention($1)",
                    escape_identifier(&settings.schema)
                ),
                &[&settings.table],
            )
            .await?
            .try_get(0)?;
        if removed > 0 {
            let qualified = ddl::qualified(&settings.schema, &settings.table);
            if settings.partitioning == Partitioning::None {
                tracing::info!(backend = NAME, table = %qualified, rows = removed, "deleted audit events past retention");
            } else {
                self.reload(client, settings).await?;
                tracing::info!(backend = NAME, table = %qualified, partitions = removed, "dropped audit partitions past retention");
            }
        }
        Ok(())
    }
}

/// The names of the events table's partitions, from the catalog.
async fn partition_names(client: &Client, settings: &Settings) -> Result<Vec<String>, Failure> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = to_regclass($1)",
            &[&ddl::qualified(&settings.schema, &settings.table)],
        )
        .await?;
    rows.iter()
        .map(|row| row.try_get::<_, String>(0).map_err(Failure::from))
        .collect()
}

/// The event's time as the partition key column `time` takes it.
pub(super) fn event_time(event: &EncodedEvent) -> DateTime<Utc> {
    // Timestamps are microseconds since the epoch, well within chrono's range.
    DateTime::from_timestamp_micros(event.time().unix_micros()).unwrap_or_default()
}

/// The start day encoded in the name of one of `table`'s partitions.
fn partition_start(table: &str, name: &str, partitioning: Partitioning) -> Option<NaiveDate> {
    let suffix = name.strip_prefix(table)?.strip_prefix("_p")?;
    partitioning.parse_suffix(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_their_period() {
        let time = DateTime::parse_from_rfc3339("2026-02-28T23:59:59.999999Z")
            .unwrap()
            .with_timezone(&Utc);
        let day = Partitioning::Daily.start_of(time);
        assert_eq!(Partitioning::Daily.suffix(day), "20260228");
        assert_eq!(
            Partitioning::Daily.end_of(day),
            NaiveDate::from_ymd_opt(2026, 3, 1)
        );
        let month = Partitioning::Monthly.start_of(time);
        assert_eq!(Partitioning::Monthly.suffix(month), "202602");
        assert_eq!(
            Partitioning::Monthly.end_of(month),
            NaiveDate::from_ymd_opt(2026, 3, 1)
        );
        let (daily, monthly) = (Partitioning::Daily, Partitioning::Monthly);
        assert_eq!(
            partition_start("events", "events_p202602", monthly),
            Some(month)
        );
        assert_eq!(
            partition_start("events", "events_p20260228", daily),
            Some(day)
        );
        assert_eq!(partition_start("events", "events_p20260228", monthly), None);
        assert_eq!(partition_start("events", "events_p2026022", daily), None);
        assert_eq!(partition_start("events", "other_p202602", monthly), None);
        assert_eq!(partition_start("events", "events_p2026x2", monthly), None);
    }
}
