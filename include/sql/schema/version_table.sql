{#- The version table, created before any migration runs, then locked for the rest of the
    migrating transaction so that two migrators never apply the same migration twice. LOCK is
    valid on Redshift and PostgreSQL (unlike PostgreSQL's advisory locks). -#}
CREATE SCHEMA IF NOT EXISTS {{ schema }};

CREATE TABLE IF NOT EXISTS {{ schema }}.schema_migrations (
    version         INTEGER NOT NULL,
    name            VARCHAR(256) NOT NULL,
    checksum        VARCHAR(32) NOT NULL,
    applied_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (version)
);

LOCK TABLE {{ schema }}.schema_migrations;
