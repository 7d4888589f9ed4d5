{#-
  Migration 0003: refreshes owed by the loads. When Stage_events stages again an object that
  changed (late or corrected events), it notes here, in its own transaction, that the songplays
  and users loads owe a reload of the whole UTC days of that object's events; the fact load that
  pays its debt notes one for time (rebuilt from songplays). Each load pays what its table owes in
  its own transaction, so a debt outlives a failed load, a cleared run, a crash or a restart, and
  is paid once. Empty whenever every load has caught up.
-#}
CREATE TABLE {{ schema }}.load_refresh (
    table_name   VARCHAR(128) NOT NULL,
    range_start  TIMESTAMP NOT NULL,
    range_end    TIMESTAMP NOT NULL,
    run_id       VARCHAR(512) NOT NULL,
    noted_at     TIMESTAMP NOT NULL
){% if dialect == 'redshift' %} DISTSTYLE ALL{% endif %};
