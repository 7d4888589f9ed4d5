"""
### Sparkify ETL: S3 JSON → Redshift staging → star schema, for any whole hours

Each run owns its data interval `[data_interval_start, data_interval_end)` (UTC): an hour when
scheduled; any whole number of hours, up to `SPARKIFY_MAX_INTERVAL_DAYS` (default 31 days), when
triggered with a manual data interval (a day, three days, a month: the fast way to backfill; see
docs/backfills.md). A wide run leaves every table as the hourly runs of its hours would.

1. **Stage_events** copies the daily log file of every UTC day the interval touches,
   `s3://<bucket>/<log_prefix>/<yyyy>/<mm>/<yyyy-mm-dd>-events.json`, into `staging_events`,
   unless the load manifest already holds it unchanged (same ETag and size). A missing or empty
   file is waited for (deferred: no worker slot held) until `events_grace_hours` after the
   interval's end, then the task fails once and alerts.
2. **Stage_songs** copies new or changed objects under `s3://<bucket>/<song_prefix>/` into
   `staging_songs`. The prefix is listed at most once every `song_listing_period_hours`.
3. **Load_songplays_fact_table** replaces the songplays of the interval.
4. The dimensions: `users` (merge, latest event wins), `songs` and `artists` (merge of new or
   changed rows), `time` (rebuild of the interval).
5. **Run_data_quality_checks** runs `include/quality/checks.yaml` (among them: every daily file
   the interval needs was staged) and fails the run on errors.

Every load is one transaction, so reruns and backfills in any order give the same tables.
When Stage_events finds that one of the previous `late_data_days` days' files (default 1), or one
of the interval's own, changed since it was staged (late or corrected events), it stages it again
and the songplays, users and time loads reload those whole UTC days, so no hour of them stays stale.
Works on Amazon Redshift (a `redshift` connection) and on PostgreSQL (a `postgres` one).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param, chain

from sparkify.alerts import alert_on_failure, alert_on_warnings, late_run_deadline
from sparkify.intervals import event_log_keys, late_event_log_keys
from sparkify.operators import (
    DataQualityOperator,
    LoadDimensionOperator,
    LoadFactOperator,
    StageToRedshiftOperator,
)
from sparkify.settings import DEFAULTS, SQL_DIR

# Every daily log file the run's interval touches: one for an hourly run, thirty for a month
# (sparkify.intervals, given to the templates as macros).
EVENTS_KEYS = "{{ event_log_keys(params.log_prefix, data_interval_start, data_interval_end) | join(' ') }}"
# The previous late_data_days days' files: re-staged when they changed after their day was loaded.
LATE_KEYS = "{{ late_event_log_keys(params.log_prefix, data_interval_start, params.late_data_days) | join(' ') }}"
WAREHOUSE = {"schema": "{{ params.schema }}", "redshift_conn_id": "{{ params.redshift_conn_id }}"}
# The star loads also choose how personal data (names, location, user agent) is loaded.
LOAD = {**WAREHOUSE, "personal_data": "{{ params.personal_data }}"}


def table_asset(table: str) -> Asset:
    """The warehouse table as an Airflow asset, so the UI shows lineage and DAGs can wait on it.

    The ``x-`` scheme is Airflow's for private URIs: no provider normalizes it, so building the asset
    does not load every provider's URI handlers (the amazon one imports boto3), which every task
    process would otherwise pay, about 0.8 CPU-s each, when it parses this file (docs/performance.md).
    """
    return Asset(name=f"sparkify.{table}", uri=f"x-sparkify://warehouse/{table}", group="sparkify-warehouse")


default_args = {
    "owner": "sparkify",
    "depends_on_past": False,
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
    "email_on_retry": False,
    "email_on_failure": False,
    "on_failure_callback": alert_on_failure,
}

with DAG(
    dag_id="sparkify_etl",
    description="Hourly load of Sparkify's S3 event logs and song data into the star schema",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2018, 11, 1),
    catchup=False,
    max_active_runs=4,
    default_args=default_args,
    deadline=late_run_deadline(),
    # The operators' SQL files (include/sql) are template files, rendered by Airflow: Rendered Template shows them.
    template_searchpath=[str(SQL_DIR)],
    user_defined_macros={"event_log_keys": event_log_keys, "late_event_log_keys": late_event_log_keys},
    tags=["sparkify", "etl", "redshift"],
    params={
        "s3_bucket": Param(DEFAULTS.s3_bucket, type="string", description="Source bucket"),
        "log_prefix": Param(DEFAULTS.log_prefix, type="string", description="Prefix of the daily event logs"),
        "song_prefix": Param(DEFAULTS.song_prefix, type="string", description="Prefix of the song files"),
        "log_jsonpath": Param(DEFAULTS.log_jsonpath, type="string", description="Key of the events' JSONPaths file"),
        "region": Param(DEFAULTS.region, type="string", description="Region of the source bucket"),
        "schema": Param(DEFAULTS.schema, type="string", description="Warehouse schema"),
        "redshift_conn_id": Param(DEFAULTS.redshift_conn_id, type="string", description="Warehouse connection"),
        "aws_conn_id": Param(DEFAULTS.aws_conn_id, type="string", description="AWS connection for S3"),
        "manifest_bucket": Param(
            DEFAULTS.manifest_bucket, type="string", description="Writable bucket for Redshift COPY manifests"
        ),
        "song_listing_period_hours": Param(
            DEFAULTS.song_listing_period_hours, type="number", minimum=0,
            description="List the song prefix at most this often (0: every run)",
        ),
        "late_data_days": Param(
            DEFAULTS.late_data_days, type="integer", minimum=0, maximum=31,
            description="Also re-stage the previous days' files when they changed after they were loaded",
        ),
        "personal_data": Param(
            DEFAULTS.personal_data, type="string", enum=["keep", "hash", "omit"],
            description="Users' names, location and user agent: keep, hash (MD5) or omit (NULL)",
        ),
        "events_grace_hours": Param(
            DEFAULTS.events_grace_hours, type="number", minimum=0,
            description="How long after its interval a missing daily log file is waited for (deferred)",
        ),
    },
) as dag:
    Begin_execution = EmptyOperator(task_id="Begin_execution", doc_md="Start of the run.")

    Stage_events = StageToRedshiftOperator(
        task_id="Stage_events",
        doc_md="Copy the run's daily event log into `staging_events` (JSONPaths), if new or changed.",
        table="staging_events",
        s3_bucket="{{ params.s3_bucket }}",
        s3_key=EVENTS_KEYS,
        json_format="s3://{{ params.s3_bucket }}/{{ params.log_jsonpath }}",
        region="{{ params.region }}",
        aws_conn_id="{{ params.aws_conn_id }}",
        manifest_bucket="{{ params.manifest_bucket }}",
        grace_hours="{{ params.events_grace_hours }}",
        late_keys=LATE_KEYS,
        source_key_column="source_key",
        hour_counts=True,
        outlets=[table_asset("staging_events")],
        **WAREHOUSE,
    )

    Stage_songs = StageToRedshiftOperator(
        task_id="Stage_songs",
        doc_md="Copy new or changed song files into `staging_songs` (`auto`), listing the prefix once a period.",
        table="staging_songs",
        s3_bucket="{{ params.s3_bucket }}",
        s3_prefix="{{ params.song_prefix }}",
        json_format="auto",
        region="{{ params.region }}",
        aws_conn_id="{{ params.aws_conn_id }}",
        manifest_bucket="{{ params.manifest_bucket }}",
        listing_period_hours="{{ params.song_listing_period_hours }}",
        dedupe_key="song_id",
        outlets=[table_asset("staging_songs")],
        **WAREHOUSE,
    )

    Load_songplays_fact_table = LoadFactOperator(
        task_id="Load_songplays_fact_table",
        doc_md="Replace the interval's songplays: one per NextSong event, matched to a song where one fits.",
        table="songplays",
        select="load/songplays.sql",
        refresh_from="Stage_events",
        outlets=[table_asset("songplays")],
        **LOAD,
    )

    Load_user_dim_table = LoadDimensionOperator(
        task_id="Load_user_dim_table",
        doc_md="Merge the users seen in the interval; a user's row comes from their latest event.",
        table="users",
        select="load/users.sql",
        refresh_from="Stage_events",
        mode="upsert",
        outlets=[table_asset("users")],
        **LOAD,
    )

    Load_song_dim_table = LoadDimensionOperator(
        task_id="Load_song_dim_table",
        doc_md="Merge new or changed songs from `staging_songs`.",
        table="songs",
        select="load/songs.sql",
        mode="upsert",
        outlets=[table_asset("songs")],
        **LOAD,
    )

    Load_artist_dim_table = LoadDimensionOperator(
        task_id="Load_artist_dim_table",
        doc_md="Merge new or changed artists from `staging_songs` (one row per artist_id, deterministic pick).",
        table="artists",
        select="load/artists.sql",
        mode="upsert",
        outlets=[table_asset("artists")],
        **LOAD,
    )

    Load_time_dim_table = LoadDimensionOperator(
        task_id="Load_time_dim_table",
        doc_md="Rebuild the interval's rows of `time` from the interval's songplays.",
        table="time",
        select="load/time.sql",
        refresh_from="Stage_events",
        mode="truncate_insert",
        scope_column="start_time",
        outlets=[table_asset("time")],
        **LOAD,
    )

    Run_data_quality_checks = DataQualityOperator(
        task_id="Run_data_quality_checks",
        doc_md="Run `include/quality/checks.yaml`; fail the run, without retries, when an error check fails.",
        source_keys=EVENTS_KEYS,
        on_success_callback=alert_on_warnings,
        **WAREHOUSE,
    )

    End_execution = EmptyOperator(task_id="End_execution", doc_md="End of the run.")

    # Variables are named as their task ids (ruff AIR001).
    chain(
        Begin_execution,
        [Stage_events, Stage_songs],
        Load_songplays_fact_table,
        [Load_user_dim_table, Load_song_dim_table, Load_artist_dim_table, Load_time_dim_table],
        Run_data_quality_checks,
        End_execution,
    )
