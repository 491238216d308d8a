//! The SQL text of the layout: the events table and its schema-wide objects (the versions
//! table, the trigger and maintenance functions). `schema.rs` decides which of it runs.
//!
//! Layout version 2 moves every deletion into the database: the trigger lets only the
//! table's owner delete, and only rows older than the retention recorded (by the owner) in
//! `oauth_audit_schema`. Writers that do not own the table create partitions and run
//! retention through two `SECURITY DEFINER` functions that read the same record, so no
//! session setting and no argument a writer passes can widen what is removed.

use postgres_protocol::escape::{escape_identifier, escape_literal};

use super::settings::VERSIONS_TABLE;

/// `"schema"."name"`, for SQL built here and for `to_regclass`.
pub(super) fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", escape_identifier(schema), escape_identifier(name))
}

/// `CREATE TABLE` for the versions table, one per schema.
pub(super) fn versions_table(schema: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {s}.{v} (
             table_name text PRIMARY KEY,
             version integer NOT NULL,
             partitioning text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now(),
             updated_at timestamptz NOT NULL DEFAULT now(),
             retention interval
         )",
        s = escape_identifier(schema),
        v = escape_identifier(VERSIONS_TABLE),
    )
}

/// Brings a versions table created by layout version 1 up to date.
pub(super) fn versions_table_v2(schema: &str) -> String {
    format!(
        "ALTER TABLE {s}.{v} ADD COLUMN IF NOT EXISTS retention interval",
        s = escape_identifier(schema),
        v = escape_identifier(VERSIONS_TABLE),
    )
}

/// The trigger function and the two maintenance functions, shared by the schema's tables.
///
/// `CREATE OR REPLACE` keeps the trigger function's identity, so the triggers of tables
/// created by version 1 (and of their partitions) run the new body as soon as this commits.
pub(super) fn functions(schema: &str) -> String {
    let s = escape_identifier(schema);
    let v = escape_identifier(VERSIONS_TABLE);
    let schema_literal = escape_literal(schema);
    format!(
        "CREATE OR REPLACE FUNCTION {s}.oauth_audit_append_only() RETURNS trigger
         LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
         DECLARE
             events oid := coalesce(pg_partition_root(TG_RELID), TG_RELID);
             events_schema name;
             events_name name;
             events_owner oid;
             keep interval;
         BEGIN
             SELECT n.nspname, c.relname, c.relowner INTO events_schema, events_name, events_owner
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = events;
             IF TG_OP = 'DELETE'
                AND events_owner = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
             THEN
                 EXECUTE format('SELECT retention FROM %I.{v_plain} WHERE table_name = $1', events_schema)
                     INTO keep USING events_name::text;
                 IF keep IS NOT NULL AND OLD.time < now() - keep THEN
                     RETURN OLD;
                 END IF;
             END IF;
             RAISE EXCEPTION 'oauth-audit: % on %.% refused: audit events are append-only',
                 TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                 USING ERRCODE = 'insufficient_privilege',
                       HINT = 'only the table owner removes events, and only those older than the retention recorded in {v_plain}';
         END
         $fn$;

         CREATE OR REPLACE FUNCTION {s}.oauth_audit_create_partition(events_table text, period_start date)
         RETURNS void
         LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
         DECLARE
             events_schema constant text := {schema_literal};
             layout text;
             period_end date;
             partition text;
         BEGIN
             SELECT partitioning INTO layout FROM {s}.{v} WHERE table_name = events_table;
             IF layout = 'monthly' AND period_start = date_trunc('month', period_start)::date THEN
                 period_end := (period_start + interval '1 month')::date;
                 partition := events_table || '_p' || to_char(period_start, 'YYYYMM');
             ELSIF layout = 'daily' THEN
                 period_end := period_start + 1;
                 partition := events_table || '_p' || to_char(period_start, 'YYYYMMDD');
             ELSE
                 RAISE EXCEPTION 'oauth-audit: no partition of %.% starts at %', events_schema, events_table, period_start
                     USING ERRCODE = 'invalid_parameter_value';
             END IF;
             PERFORM pg_advisory_xact_lock(hashtext('oauth_audit:' || events_schema));
             EXECUTE format('CREATE TABLE IF NOT EXISTS %I.%I PARTITION OF %I.%I FOR VALUES FROM (%L) TO (%L)',
                 events_schema, partition, events_schema, events_table,
                 period_start::text || ' 00:00:00+00', period_end::text || ' 00:00:00+00');
             EXECUTE format('CREATE OR REPLACE TRIGGER oauth_audit_no_truncate BEFORE TRUNCATE ON %I.%I
                 FOR EACH STATEMENT EXECUTE FUNCTION %I.oauth_audit_append_only()',
                 events_schema, partition, events_schema);
         END
         $fn$;

         CREATE OR REPLACE FUNCTION {s}.oauth_audit_retention(events_table text) RETURNS bigint
         LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
         DECLARE
             events_schema constant text := {schema_literal};
             layout text;
             keep interval;
             cutoff timestamptz;
             part record;
             upper_bound timestamptz;
             removed bigint := 0;
         BEGIN
             SELECT partitioning, retention INTO layout, keep FROM {s}.{v} WHERE table_name = events_table;
             IF keep IS NULL THEN
                 RETURN 0;
             END IF;
             BEGIN
                 cutoff := now() - keep;
             EXCEPTION WHEN datetime_field_overflow THEN
                 RETURN 0;
             END;
             IF layout = 'none' THEN
                 EXECUTE format('DELETE FROM %I.%I WHERE time < $1', events_schema, events_table) USING cutoff;
                 GET DIAGNOSTICS removed = ROW_COUNT;
                 RETURN removed;
             END IF;
             FOR part IN
                 SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = format('%I.%I', events_schema, events_table)::regclass
             LOOP
                 -- The bound, not the name, says what a partition holds; MAXVALUE and DEFAULT
                 -- partitions have no upper date and are kept.
                 upper_bound := substring(part.bound FROM 'TO \\(''([^'']+)''\\)')::timestamptz;
                 IF upper_bound IS NOT NULL AND upper_bound <= cutoff THEN
                     EXECUTE format('DROP TABLE IF EXISTS %I.%I', events_schema, part.name);
                     removed := removed + 1;
                 END IF;
             END LOOP;
             RETURN removed;
         END
         $fn$;

         -- The recorded retention decides what may be deleted, so only the owner changes
         -- the record, whatever else was granted on it.
         CREATE OR REPLACE FUNCTION {s}.oauth_audit_owner_only() RETURNS trigger
         LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
         BEGIN
             IF (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID)
                = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
             THEN
                 IF TG_OP = 'DELETE' THEN
                     RETURN OLD;
                 END IF;
                 RETURN NEW;
             END IF;
             RAISE EXCEPTION 'oauth-audit: % on %.% refused: only its owner changes it',
                 TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                 USING ERRCODE = 'insufficient_privilege';
         END
         $fn$;
         CREATE OR REPLACE TRIGGER oauth_audit_owner_only BEFORE INSERT OR UPDATE OR DELETE ON {s}.{v}
             FOR EACH ROW EXECUTE FUNCTION {s}.oauth_audit_owner_only();
         CREATE OR REPLACE TRIGGER oauth_audit_owner_only_truncate BEFORE TRUNCATE ON {s}.{v}
             FOR EACH STATEMENT EXECUTE FUNCTION {s}.oauth_audit_owner_only();

         REVOKE ALL ON FUNCTION {s}.oauth_audit_create_partition(text, date) FROM PUBLIC;
         REVOKE ALL ON FUNCTION {s}.oauth_audit_retention(text) FROM PUBLIC;",
        v_plain = VERSIONS_TABLE,
    )
}

/// The events table, its indexes and its triggers (a new table only).
pub(super) fn events_table(schema: &str, table: &str, partitioned: bool) -> String {
    let s = escape_identifier(schema);
    let qualified = format!("{s}.{}", escape_identifier(table));
    let t = |suffix: &str| escape_identifier(&format!("{table}_{suffix}"));
    let (key, partition_by) = if partitioned {
        ("id, time", "PARTITION BY RANGE (time)")
    } else {
        ("id", "")
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {qualified} (
             id uuid NOT NULL,
             time timestamptz NOT NULL,
             kind text NOT NULL,
             outcome text GENERATED ALWAYS AS (event->>'outcome') STORED,
             subject text GENERATED ALWAYS AS (event->'actor'->>'subject') STORED,
             client_id text GENERATED ALWAYS AS (event->'actor'->>'client_id') STORED,
             source_ip inet GENERATED ALWAYS AS ((event->'source'->>'ip')::inet) STORED,
             event jsonb NOT NULL,
             inserted_at timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY ({key})
         ) {partition_by};
         CREATE INDEX IF NOT EXISTS {time_idx} ON {qualified} (time);
         CREATE INDEX IF NOT EXISTS {kind_idx} ON {qualified} (kind, time);
         CREATE INDEX IF NOT EXISTS {subject_idx} ON {qualified} (subject, time);
         CREATE INDEX IF NOT EXISTS {client_idx} ON {qualified} (client_id, time);
         CREATE INDEX IF NOT EXISTS {ip_idx} ON {qualified} (source_ip, time);
         CREATE OR REPLACE TRIGGER oauth_audit_append_only BEFORE UPDATE OR DELETE ON {qualified}
             FOR EACH ROW EXECUTE FUNCTION {s}.oauth_audit_append_only();
         CREATE OR REPLACE TRIGGER oauth_audit_no_truncate BEFORE TRUNCATE ON {qualified}
             FOR EACH STATEMENT EXECUTE FUNCTION {s}.oauth_audit_append_only();
         COMMENT ON TABLE {qualified} IS 'oauth-audit events (schema v1 JSON), append-only';",
        time_idx = t("time"),
        kind_idx = t("kind"),
        subject_idx = t("subject"),
        client_idx = t("client"),
        ip_idx = t("ip"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_literals_are_quoted_by_postgres_protocol() {
        assert_eq!(qualified("audit", "events"), r#""audit"."events""#);
        // Checked identifiers never hold quotes; should one slip through, it stays one name.
        assert_eq!(qualified("a\"b", "c"), r#""a""b"."c""#);
        let functions = functions("audit");
        assert!(functions.contains("events_schema constant text := 'audit';"));
        assert!(functions.contains(r#"CREATE OR REPLACE FUNCTION "audit".oauth_audit_retention"#));
        let table = events_table("audit", "events", true);
        assert!(table.contains(
            r#"CREATE INDEX IF NOT EXISTS "events_kind" ON "audit"."events" (kind, time)"#
        ));
        assert!(table.contains("PARTITION BY RANGE (time)"));
    }
}
