{#-
  Migration 0005: text widths count bytes on both warehouses, as on Redshift.

  Redshift's VARCHAR(n) holds n bytes; PostgreSQL's holds n characters, so multibyte text that
  Redshift refuses loaded locally. Two changes:

  1. A staging column that feeds a star column is no wider than that star column (location and
     useragent of staging_events; artist_location, artist_name and title of staging_songs: 1,024
     bytes, from 65,535). Text too wide for the star schema is then refused where it arrives, by
     the staging COPY, whose error names the S3 object, the line and the column, instead of by a
     load that fails on every retry naming neither. The real data's widest value of these is 177
     bytes. On Redshift, which cannot narrow a column inside a transaction, each staging table is
     rebuilt (same columns, order, keys and rows) and renamed into place: its grants go with the
     old table, so run `python -m sparkify.access grant` (or the setup DAG's create_tables task)
     after migrating a Redshift warehouse that uses the loader role.
  2. PostgreSQL: every VARCHAR column of the staging and star tables and of load_manifest refuses
     a value longer than its width in bytes (a CHECK on octet_length, named <table>_<column>_bytes),
     so every statement that Redshift would refuse fails here too.
-#}
{%- set narrowed = {
    "staging_events": {"location": 1024, "useragent": 1024},
    "staging_songs": {"artist_location": 1024, "artist_name": 1024, "title": 1024},
} -%}
{%- set widths = {
    "staging_events": [("artist", 65535), ("auth", 64), ("firstname", 1024), ("gender", 64), ("lastname", 1024),
                       ("level", 64), ("location", 1024), ("method", 16), ("page", 256), ("song", 65535),
                       ("useragent", 1024), ("userid", 64), ("source_key", 1024)],
    "staging_songs": [("artist_id", 64), ("artist_location", 1024), ("artist_name", 1024), ("song_id", 64),
                      ("title", 1024)],
    "songplays": [("songplay_id", 32), ("level", 64), ("song_id", 64), ("artist_id", 64), ("location", 1024),
                  ("user_agent", 1024)],
    "users": [("first_name", 1024), ("last_name", 1024), ("gender", 64), ("level", 64)],
    "songs": [("song_id", 64), ("title", 1024), ("artist_id", 64)],
    "artists": [("artist_id", 64), ("name", 1024), ("location", 1024)],
    "load_manifest": [("s3_key", 1024), ("source", 16), ("etag", 256), ("run_id", 512)],
} -%}
{%- if dialect == 'redshift' %}
CREATE TABLE {{ schema }}.staging_events_0005 (
    artist          VARCHAR(65535),
    auth            VARCHAR(64),
    firstname       VARCHAR(1024),
    gender          VARCHAR(64),
    iteminsession   INTEGER,
    lastname        VARCHAR(1024),
    length          DOUBLE PRECISION,
    level           VARCHAR(64),
    location        VARCHAR(1024),
    method          VARCHAR(16),
    page            VARCHAR(256),
    registration    DOUBLE PRECISION,
    sessionid       INTEGER,
    song            VARCHAR(65535),
    status          INTEGER,
    ts              BIGINT,
    useragent       VARCHAR(1024),
    userid          VARCHAR(64),
    source_key      VARCHAR(1024)
) DISTKEY (song) SORTKEY (ts);
INSERT INTO {{ schema }}.staging_events_0005 SELECT * FROM {{ schema }}.staging_events;
DROP TABLE {{ schema }}.staging_events;
ALTER TABLE {{ schema }}.staging_events_0005 RENAME TO staging_events;

CREATE TABLE {{ schema }}.staging_songs_0005 (
    num_songs           INTEGER,
    artist_id           VARCHAR(64),
    artist_latitude     DOUBLE PRECISION,
    artist_longitude    DOUBLE PRECISION,
    artist_location     VARCHAR(1024),
    artist_name         VARCHAR(1024),
    song_id             VARCHAR(64),
    title               VARCHAR(1024),
    duration            DOUBLE PRECISION,
    year                INTEGER
) DISTKEY (title) SORTKEY (song_id);
INSERT INTO {{ schema }}.staging_songs_0005 SELECT * FROM {{ schema }}.staging_songs;
DROP TABLE {{ schema }}.staging_songs;
ALTER TABLE {{ schema }}.staging_songs_0005 RENAME TO staging_songs;
{%- else %}
{%- for table, columns in narrowed.items() %}
{%- for column, width in columns.items() %}
ALTER TABLE {{ schema }}.{{ table }} ALTER COLUMN {{ column }} TYPE VARCHAR({{ width }});
{%- endfor %}
{%- endfor %}
{%- for table, columns in widths.items() %}
{%- for column, width in columns %}
ALTER TABLE {{ schema }}.{{ table }} ADD CONSTRAINT {{ table }}_{{ column }}_bytes CHECK (OCTET_LENGTH({{ column }}) <= {{ width }});
{%- endfor %}
{%- endfor %}
{%- endif %}
