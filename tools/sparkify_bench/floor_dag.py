"""
### sparkify_floor: `sparkify_etl`'s shape, with tasks that do nothing (Airflow's own cost)

`make bench` copies this file, as `sparkify_floor.py`, into the DAG folder of its private
stack next to a copy of `dags/sparkify_etl.py`, and backfills both over the same intervals
through the same scheduler, executor and metadata database. The difference between the two
backfills is the pipeline's own work; this DAG's backfill is the floor Airflow puts under any
DAG of this shape.

Same task ids, same dependencies, same timetable, start date, `max_active_runs`, default
arguments (without retries: nothing here fails) and late-run deadline as `sparkify_etl`. Every
task that runs code in `sparkify_etl` is a `@task` returning None here. `Begin_execution` and
`End_execution` are `EmptyOperator`s in `sparkify_etl`, which the scheduler marks done without
starting a task process; they stay `EmptyOperator`s here (`EMPTY_ENDS = True`), so the floor is
what Airflow costs for *this* DAG. `make bench BENCH_ARGS="--floor-all-tasks"` sets
`EMPTY_ENDS = False` in the copy: a `@task` in every position, as in the platform notes.

Not deployed: it lives in `tools/sparkify_bench/`, not in `dags/`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, chain, task

from sparkify.alerts import alert_on_failure, late_run_deadline

EMPTY_ENDS = True

default_args = {
    "owner": "sparkify",
    "depends_on_past": False,
    "retries": 0,
    "email_on_retry": False,
    "email_on_failure": False,
    "on_failure_callback": alert_on_failure,
}


@task
def nothing() -> None:
    """Do nothing: the task costs only what Airflow costs to run a task."""
    return None


def position(task_id: str, empty: bool = False):
    if empty and EMPTY_ENDS:
        return EmptyOperator(task_id=task_id)
    return nothing.override(task_id=task_id)()


with DAG(
    dag_id="sparkify_floor",
    description="make bench: sparkify_etl's shape with tasks that do nothing (Airflow's floor)",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2018, 11, 1),
    catchup=False,
    max_active_runs=4,
    default_args=default_args,
    deadline=late_run_deadline(),
    tags=["sparkify", "bench"],
) as dag:
    chain(
        position("Begin_execution", empty=True),
        [position("Stage_events"), position("Stage_songs")],
        position("Load_songplays_fact_table"),
        [
            position("Load_user_dim_table"),
            position("Load_song_dim_table"),
            position("Load_artist_dim_table"),
            position("Load_time_dim_table"),
        ],
        position("Run_data_quality_checks"),
        position("End_execution", empty=True),
    )
