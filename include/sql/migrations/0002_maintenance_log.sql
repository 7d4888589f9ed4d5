{#-
  Migration 0002: what the maintenance DAG did (sparkify_maintenance): per table, the VACUUM and
  ANALYZE it ran or skipped because nothing had changed, and the staged rows and manifest entries
  its retention removed. Read by people and by the tests; the star schema is not touched.
-#}
CREATE TABLE {{ schema }}.maintenance_log (
    run_id          VARCHAR(512) NOT NULL,
    task            VARCHAR(64) NOT NULL,
    table_name      VARCHAR(128) NOT NULL,
    action          VARCHAR(256) NOT NULL,
    rows_affected   BIGINT,
    logged_at       TIMESTAMP NOT NULL
){% if dialect == 'redshift' %} DISTSTYLE EVEN SORTKEY (logged_at){% endif %};
