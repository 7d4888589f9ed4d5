{#-
  Migration 0004: what a failed check tells its reader. description says in words what the check
  checks; samples holds up to five offending rows of a failed check (key and offending value, one
  row per line, "column=value" separated by ", "), or the hours whose counts differ for a
  reconciliation check. Plain text: Redshift has neither jsonb nor arrays. Widths are bytes.
-#}
ALTER TABLE {{ schema }}.quality_results ADD COLUMN description VARCHAR(1024);
ALTER TABLE {{ schema }}.quality_results ADD COLUMN samples VARCHAR(4096);
