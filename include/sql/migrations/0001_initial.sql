{#-
  Migration 0001: the schema as the project first shipped it (every table of the warehouse).
  Rendered per dialect: distribution and sort keys only on Redshift (PostgreSQL has no such
  clauses). IF NOT EXISTS everywhere, so that a warehouse created before the schema was versioned
  (by the same statements) is taken up as version 1 without change. Never edit an applied
  migration: add the next one (see sparkify/migrations.py).
-#}
{%- macro redshift(clause) -%}{% if dialect == 'redshift' %} {{ clause }}{% endif %}{%- endmacro -%}

CREATE SCHEMA IF NOT EXISTS {{ schema }};

-- Staging: the source fields as they arrive. Column order of staging_events is the order of the
-- JSONPaths file (log_json_path.json); source_key records which S3 object each row came from.
-- Redshift: distributed on song so that the songplays join with staging_songs (distributed on
-- title) is co-located; sorted on ts because every hourly run filters on it.
CREATE TABLE IF NOT EXISTS {{ schema }}.staging_events (
    artist          VARCHAR(65535),
    auth            VARCHAR(64),
    firstname       VARCHAR(1024),
    gender          VARCHAR(64),
    iteminsession   INTEGER,
    lastname        VARCHAR(1024),
    length          DOUBLE PRECISION,
    level           VARCHAR(64),
    location        VARCHAR(65535),
    method          VARCHAR(16),
    page            VARCHAR(256),
    registration    DOUBLE PRECISION,
    sessionid       INTEGER,
    song            VARCHAR(65535),
    status          INTEGER,
    ts              BIGINT,
    useragent       VARCHAR(65535),
    userid          VARCHAR(64),
    source_key      VARCHAR(1024)
){{ redshift('DISTKEY (song) SORTKEY (ts)') }};

-- Redshift: distributed on title to co-locate the songplays join (see staging_events).
CREATE TABLE IF NOT EXISTS {{ schema }}.staging_songs (
    num_songs           INTEGER,
    artist_id           VARCHAR(64),
    artist_latitude     DOUBLE PRECISION,
    artist_longitude    DOUBLE PRECISION,
    artist_location     VARCHAR(65535),
    artist_name         VARCHAR(65535),
    song_id             VARCHAR(64),
    title               VARCHAR(65535),
    duration            DOUBLE PRECISION,
    year                INTEGER
){{ redshift('DISTKEY (title) SORTKEY (song_id)') }};

-- Star schema. Redshift does not enforce these keys; the loads and the data-quality checks do.
-- songplays: distributed on user_id (song_id is NULL for unmatched plays and would skew), which
-- co-locates the "top users" join with users; sorted on start_time, the filter of every hourly
-- load and of most analyst queries.
CREATE TABLE IF NOT EXISTS {{ schema }}.songplays (
    songplay_id     VARCHAR(32) NOT NULL,
    start_time      TIMESTAMP NOT NULL,
    user_id         INTEGER,
    level           VARCHAR(64),
    song_id         VARCHAR(64),
    artist_id       VARCHAR(64),
    session_id      INTEGER,
    location        VARCHAR(1024),
    user_agent      VARCHAR(1024),
    PRIMARY KEY (songplay_id)
){{ redshift('DISTKEY (user_id) SORTKEY (start_time)') }};

-- users: distributed on user_id like songplays; last_event_ts (epoch ms of the event the row
-- came from) lets an older interval loaded late leave a newer level alone.
CREATE TABLE IF NOT EXISTS {{ schema }}.users (
    user_id         INTEGER NOT NULL,
    first_name      VARCHAR(1024),
    last_name       VARCHAR(1024),
    gender          VARCHAR(64),
    level           VARCHAR(64),
    last_event_ts   BIGINT NOT NULL,
    PRIMARY KEY (user_id)
){{ redshift('DISTKEY (user_id) SORTKEY (user_id)') }};

-- songs and artists: small, read by most analyst joins: a full copy on every node (ALL).
CREATE TABLE IF NOT EXISTS {{ schema }}.songs (
    song_id         VARCHAR(64) NOT NULL,
    title           VARCHAR(1024),
    artist_id       VARCHAR(64),
    year            INTEGER,
    duration        DOUBLE PRECISION,
    PRIMARY KEY (song_id)
){{ redshift('DISTSTYLE ALL SORTKEY (song_id)') }};

CREATE TABLE IF NOT EXISTS {{ schema }}.artists (
    artist_id       VARCHAR(64) NOT NULL,
    name            VARCHAR(1024),
    location        VARCHAR(1024),
    latitude        DOUBLE PRECISION,
    longitude       DOUBLE PRECISION,
    PRIMARY KEY (artist_id)
){{ redshift('DISTSTYLE ALL SORTKEY (artist_id)') }};

-- time grows with songplays, so it is distributed (on its key) rather than copied to every node.
CREATE TABLE IF NOT EXISTS {{ schema }}.time (
    start_time      TIMESTAMP NOT NULL,
    hour            INTEGER,
    day             INTEGER,
    week            INTEGER,
    month           INTEGER,
    year            INTEGER,
    weekday         INTEGER,
    PRIMARY KEY (start_time)
){{ redshift('DISTKEY (start_time) SORTKEY (start_time)') }};

-- Bookkeeping. load_manifest: one row per staged S3 object (what was staged, from which version).
CREATE TABLE IF NOT EXISTS {{ schema }}.load_manifest (
    s3_key          VARCHAR(1024) NOT NULL,
    source          VARCHAR(16) NOT NULL,
    etag            VARCHAR(256),
    size_bytes      BIGINT,
    row_count       BIGINT,
    staged_at       TIMESTAMP NOT NULL,
    run_id          VARCHAR(512),
    PRIMARY KEY (s3_key)
){{ redshift('DISTSTYLE ALL') }};

-- What each staged event object held per hour, counted when it was read from S3: the
-- source side of the songplays reconciliation check.
CREATE TABLE IF NOT EXISTS {{ schema }}.load_manifest_hours (
    s3_key            VARCHAR(1024) NOT NULL,
    hour_start        TIMESTAMP NOT NULL,
    events            BIGINT NOT NULL,
    next_song_events  BIGINT NOT NULL,
    PRIMARY KEY (s3_key, hour_start)
){{ redshift('DISTSTYLE ALL SORTKEY (hour_start)') }};

-- When a prefix (song_data/) was last listed, so that it is listed once a period, not every hour.
CREATE TABLE IF NOT EXISTS {{ schema }}.load_listing (
    prefix          VARCHAR(1024) NOT NULL,
    listed_at       TIMESTAMP NOT NULL,
    object_count    BIGINT NOT NULL,
    PRIMARY KEY (prefix)
){{ redshift('DISTSTYLE ALL') }};

-- Every data-quality result of every run.
CREATE TABLE IF NOT EXISTS {{ schema }}.quality_results (
    run_id          VARCHAR(512) NOT NULL,
    dag_id          VARCHAR(256) NOT NULL,
    interval_start  TIMESTAMP,
    interval_end    TIMESTAMP,
    check_name      VARCHAR(256) NOT NULL,
    table_name      VARCHAR(128),
    column_name     VARCHAR(128),
    severity        VARCHAR(16) NOT NULL,
    actual          VARCHAR(1024),
    expected        VARCHAR(1024),
    passed          BOOLEAN NOT NULL,
    checked_at      TIMESTAMP NOT NULL
){{ redshift('DISTSTYLE EVEN SORTKEY (checked_at)') }};
