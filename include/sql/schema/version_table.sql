{#- The version table, created (when missing) in a transaction of its own that migrate commits
    before it locks the table: on Redshift a transaction's snapshot is taken at its first CREATE
    TABLE, SELECT or DML, not at LOCK, so creating it in the migrating transaction would freeze
    that transaction's view of the applied versions before the lock was granted. -#}
CREATE SCHEMA IF NOT EXISTS {{ schema }};

CREATE TABLE IF NOT EXISTS {{ schema }}.schema_migrations (
    version         INTEGER NOT NULL,
    name            VARCHAR(256) NOT NULL,
    checksum        VARCHAR(32) NOT NULL,
    applied_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (version)
);
