"""The OpenLineage events of a real run, and what parsing the DAG file imports (docs/lineage.md).

``airflow dags test`` runs sparkify_etl over one hour on a real PostgreSQL warehouse and moto's S3
server, with the OpenLineage provider's file transport configured as a user would configure Marquez's
(``AIRFLOW__OPENLINEAGE__TRANSPORT``); the test reads the events the run wrote and compares each
operator's inputs, outputs and facets with what the hour's data and the SQL files imply. The hour has
one NextSong event of a logged-out visitor, so one data-quality check fails and the run's
data-quality event shows a failed assertion beside the passed ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.operators.helpers import EVENTS, EVENTS_KEY, JSONPATHS_KEY, SONGS, at, event, put_sources

from sparkify.tables import STAGING_COLUMNS, STAR_TABLES
from sparkify_local import lineage_graph

ROOT = Path(__file__).resolve().parents[2]
LOGICAL_DATE = "2018-11-04T11:00:00+00:00"  # a manual run at 11:00 owns [10:00, 11:00)
# A NextSong event with no user: its songplay's user_id is NULL, which an 'error' check catches.
VISITOR_PLAY = event(at(10, 40), user="", session=301, item=1, song="Song A", artist="Artist A", length=200.5)
OPERATOR_TASKS = (
    "Stage_events", "Stage_songs", "Load_songplays_fact_table", "Load_user_dim_table", "Load_song_dim_table",
    "Load_artist_dim_table", "Load_time_dim_table", "Run_data_quality_checks",
)

# The column lineage the SELECT files imply: star column -> the staging (or star) columns it is made of.
COLUMN_LINEAGE = {
    "songplays": {
        "songplay_id": {("staging_events", "sessionid"), ("staging_events", "iteminsession"),
                        ("staging_events", "ts")},
        "start_time": {("staging_events", "ts")},
        "user_id": {("staging_events", "userid")},
        "level": {("staging_events", "level")},
        "song_id": {("staging_songs", "song_id")},
        "artist_id": {("staging_songs", "artist_id")},
        "session_id": {("staging_events", "sessionid")},
        "location": {("staging_events", "location")},
        "user_agent": {("staging_events", "useragent")},
    },
    "users": {
        "user_id": {("staging_events", "userid")},
        "first_name": {("staging_events", "firstname")},
        "last_name": {("staging_events", "lastname")},
        "gender": {("staging_events", "gender")},
        "level": {("staging_events", "level")},
        "last_event_ts": {("staging_events", "ts")},
    },
    "songs": {c: {("staging_songs", c)} for c in ("song_id", "title", "artist_id", "year", "duration")},
    "artists": {
        "artist_id": {("staging_songs", "artist_id")},
        "name": {("staging_songs", "artist_name")},
        "location": {("staging_songs", "artist_location")},
        "latitude": {("staging_songs", "artist_latitude")},
        "longitude": {("staging_songs", "artist_longitude")},
    },
    "time": {c: {("songplays", "start_time")} for c in STAR_TABLES["time"].columns},
}
LOAD_TASKS = {"Load_songplays_fact_table": "songplays", "Load_user_dim_table": "users",
              "Load_song_dim_table": "songs", "Load_artist_dim_table": "artists", "Load_time_dim_table": "time"}
LOAD_INPUTS = {"songplays": {"staging_events", "staging_songs"}, "users": {"staging_events"},
               "songs": {"staging_songs"}, "artists": {"staging_songs"}, "time": {"songplays"}}


def run_with_file_transport(tmp_path: Path, bucket) -> list[dict]:
    """``airflow dags test`` of the hour, as a user runs it; the OpenLineage events it wrote."""
    events_file = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(events_file), "append": True}
    env = {**os.environ, "SPARKIFY_S3_BUCKET": bucket.name, "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport)}
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", "sparkify_etl", LOGICAL_DATE],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert events_file.exists(), (result.stdout + result.stderr)[-5000:]
    return [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]


def task_events(events: list[dict]) -> dict[str, dict]:
    """The last event of each task (COMPLETE or FAIL), by task id."""
    return {e["job"]["name"].split(".", 1)[1]: e for e in events
            if "." in e["job"]["name"] and e["eventType"] in ("COMPLETE", "FAIL")}


def columns_of(warehouse, table: str) -> list[dict]:
    """The schema facet's fields, read independently from the catalogue."""
    rows = warehouse.query("SELECT column_name, udt_name FROM information_schema.columns "
                           "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position", (table,))
    return [{"name": name, "type": udt} for name, udt in rows]


def number(text: str | None) -> str | None:
    """A check's actual value as both places write it (quality_results keeps every digit)."""
    try:
        return f"{float(text):.6g}"
    except (TypeError, ValueError):
        return text


def fields(dataset: dict) -> list[dict]:
    return [{"name": f["name"], "type": f["type"]} for f in dataset["facets"]["schema"]["fields"]]


@pytest.mark.slow  # a whole `airflow dags test` run
def test_events_of_one_interval(warehouse, bucket, airflow_db, tmp_path):
    put_sources(bucket, events=[*EVENTS, VISITOR_PLAY])

    events = run_with_file_transport(tmp_path, bucket)

    db = urlsplit(warehouse.url)
    s3_ns, pg_ns = f"s3://{bucket.name}", f"postgres://{db.hostname}:{db.port}"

    def table(name: str) -> str:
        return f"{warehouse.name}.public.{name}"

    # One START and one end event per operator task; the data-quality task failed (its error check).
    kinds = Counter((e["eventType"], e["job"]["name"]) for e in events)
    for task in OPERATOR_TASKS:
        end = "FAIL" if task == "Run_data_quality_checks" else "COMPLETE"
        assert kinds[("START", f"sparkify_etl.{task}")] == 1 and kinds[(end, f"sparkify_etl.{task}")] == 1, kinds
    by_task = task_events(events)
    print(f"{len(events)} OpenLineage events:", dict(Counter(e["eventType"] for e in events)))  # docs/lineage.md

    # Staging: the S3 objects (one dataset for the song prefix, the day's file and the JSONPaths file
    # for the events), the staging table with its schema and what was copied.
    songs, evts = by_task["Stage_songs"], by_task["Stage_events"]
    assert [(d["namespace"], d["name"]) for d in songs["inputs"]] == [(s3_ns, "song_data")]
    assert [(d["namespace"], d["name"]) for d in evts["inputs"]] == [(s3_ns, EVENTS_KEY), (s3_ns, JSONPATHS_KEY)]
    for ev, staging, rows, objects in ((songs, "staging_songs", len(SONGS), len(SONGS)),
                                       (evts, "staging_events", len(EVENTS) + 1, 1)):
        (out,) = ev["outputs"]
        assert (out["namespace"], out["name"]) == (pg_ns, table(staging))
        assert fields(out) == columns_of(warehouse, staging)
        assert [f["name"] for f in fields(out)] == list(STAGING_COLUMNS[staging])
        stats = out["outputFacets"]["outputStatistics"]
        assert (stats["rowCount"], stats["fileCount"]) == (rows, objects)
        staged = ev["run"]["facets"]["sparkifyStaging"]
        assert (staged["stagedObjects"], staged["rows"], staged["changedObjects"]) == (objects, rows, 0)
    assert songs["run"]["facets"]["sparkifyStaging"]["listed"] is True
    assert evts["run"]["facets"]["sparkifyStaging"]["listed"] is False

    # Loads: the tables the SELECT reads, the star table with its schema, the column lineage.
    for task, star in LOAD_TASKS.items():
        ev = by_task[task]
        assert {(d["namespace"], d["name"]) for d in ev["inputs"]} == {(pg_ns, table(t)) for t in LOAD_INPUTS[star]}
        for d in ev["inputs"]:
            assert fields(d) == columns_of(warehouse, d["name"].rsplit(".", 1)[1])
        (out,) = ev["outputs"]
        assert (out["namespace"], out["name"]) == (pg_ns, table(star))
        assert fields(out) == columns_of(warehouse, star)
        lineage = {
            column: {(f["name"].rsplit(".", 1)[1], f["field"]) for f in spec["inputFields"]}
            for column, spec in out["facets"]["columnLineage"]["fields"].items()
        }
        assert lineage == COLUMN_LINEAGE[star], task
        assert {f["namespace"] for spec in out["facets"]["columnLineage"]["fields"].values()
                for f in spec["inputFields"]} == {pg_ns}
        assert f"INSERT INTO public.{star} " in ev["job"]["facets"]["sql"]["query"]

    # Data quality: every check's result, as recorded in quality_results, on the table it checked.
    dq = by_task["Run_data_quality_checks"]
    recorded: dict[str, set] = {}
    for name, tbl, column, severity, passed, actual, expected in warehouse.query(
        "SELECT check_name, table_name, column_name, severity, passed, actual, expected FROM quality_results"
    ):
        recorded.setdefault(tbl, set()).add((name, column, severity, passed, number(actual), expected))
    reported: dict[str, set] = {}
    for d in dq["inputs"]:
        assert d["namespace"] == pg_ns
        assert fields(d) == columns_of(warehouse, d["name"].rsplit(".", 1)[1])
        reported[d["name"]] = {(a["name"], a.get("column"), a["severity"], a["success"], number(a.get("actual")),
                                a["expected"])
                               for a in d["inputFacets"]["dataQualityAssertions"]["assertions"]}
    assert reported == {table(t): results for t, results in recorded.items()}
    assert ("songplays_user_id_null_check", "user_id", "error", False, "1", "= 0") in reported[table("songplays")]
    assert sum(len(r) for r in reported.values()) == sum(len(r) for r in recorded.values()) > 20

    # The picture of docs/lineage.md, drawn from these events (SPARKIFY_LINEAGE_PICTURE=docs/lineage.png).
    graph = lineage_graph.build(events)
    assert graph.jobs == {t: "FAIL" if t == "Run_data_quality_checks" else "COMPLETE" for t in OPERATOR_TASKS}
    assert len(graph.datasets) == 3 + 2 + 5 + 1  # S3 (2 keys, 1 prefix), staging, star, load_manifest
    assert graph.failed(f"{pg_ns}/{table('songplays')}") and not graph.failed(f"{pg_ns}/{table('users')}")
    picture = Path(os.environ.get("SPARKIFY_LINEAGE_PICTURE") or tmp_path / "lineage.png")
    lineage_graph.draw(graph, picture)
    assert picture.read_bytes().startswith(b"\x89PNG")


def test_parsing_the_dag_file_imports_no_openlineage():
    """Each task process parses the DAG file: OpenLineage's client, the provider's listener and parser and
    the project's lineage code are imported only when a task completes with a transport configured. (Airflow
    reads every installed provider's metadata, ``get_provider_info``, when the file is parsed: that is all.)"""
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'openlineage' or m == 'sparkify.lineage'"
        " or m.startswith('airflow.providers.openlineage.')))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tools")])}
    result = subprocess.run([sys.executable, "-c", code, str(ROOT / "dags" / "sparkify_etl.py")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "['airflow.providers.openlineage.get_provider_info']"
