"""make bench: the pipeline against its floors, measured side by side in one run on one machine.

    make bench                                   # every section, full sizes (2-3 hours)
    make bench BENCH_ARGS="--quick"              # smoke mode: tiny sizes, every section (~10 min)
    make bench BENCH_ARGS="--only backfill,staging --repeats 5"

Sections (``--only``, comma-separated; default all, run in this order):

``staging``      First-time staging of every song object from moto's S3 server by
                 ``StageToRedshiftOperator.execute()`` (the ``Stage_songs`` task of
                 ``sparkify_etl``), against a plain parallel boto3 GET of the same keys at the best
                 thread count (swept first), same server. Goal: >= 0.8x the floor's objects/s.
``incremental``  The same staging once every object is staged: objects fetched (goal 0), S3 list
                 calls, wall time; once with the listing due, once inside the listing period.
``memory``       Peak RSS of the staging task on generated daily event logs of growing size
                 (default 100 MiB and 1 GiB) and on 100k song objects. Goal: flat, under 200 MB.
``backfill``     Airflow backfills of 24 hourly runs of ``sparkify_etl`` (songs already staged)
                 against the same 24 intervals of ``sparkify_floor`` (tools/sparkify_bench/floor_dag.py:
                 the same shape, tasks that do nothing), same scheduler, executor and metadata
                 database. Wall and CPU time. Goal: pipeline wall <= 1.25x the floor's.
``scale``        One backfill of a whole month (720 hourly runs): wall, runs per minute, a plot of
                 runs completed over time (bench-output/month_backfill.png), and every star table
                 checked against the data contract (tests/reference.py) afterwards.
``sweep``        Backfills of 48 runs over max-active-runs, then over [core] parallelism: the
                 largest value that still helps (>= 5% less wall than every smaller value).
``month``        November 2018 ([2018-11-01, 2018-12-01), songs already staged) loaded three ways on
                 the same stack, the events emptied before each: 720 hourly runs (Airflow's backfill),
                 30 daily runs and 1 run, both triggered with a manual data interval through the
                 REST API (``make run GRAIN=day`` / ``GRAIN=window``; their logical dates never equal
                 an hourly run's, so one metadata database holds all three). Wall, CPU of Airflow's
                 processes, peak RSS of the Stage_events tasks and a checksum of every star table
                 (equal in all three). Then the month as one run from an empty warehouse (songs not
                 yet staged): wall, and its Stage_songs task's objects/s against a boto3 GET of the
                 same objects. Goals: one run >= 50x faster than the hourly runs, daily >= 20x,
                 first-time Stage_songs >= 0.8x the GET floor.
``celery``       A backfill of 48 hourly runs of ``sparkify_etl`` (songs staged) on the LocalExecutor, then
                 on the CeleryExecutor with two workers and a Redis broker (make run EXECUTOR=celery
                 WORKERS=2): wall and CPU side by side, task instances per worker, the tables against
                 the data contract. Run last: it leaves the scheduler on Celery.

Every ratio comes from the pipeline and its floor run alternately (``--repeats``, default 3,
each), reported as medians with the spread (min-max). Everything runs on a private stack
(sparkify_local.runner's Stack: PostgreSQL for Airflow's metadata and the warehouse, moto's S3
server, Airflow's api-server, scheduler, dag-processor and triggerer with LocalExecutor) under
bench-output/state/, started once and stopped at the end. Results: bench-output/results.json,
bench-output/month_backfill.png, and a Markdown block for docs/performance.md on stdout
(also bench-output/performance-figures.md).

CPU time of a backfill is the CPU of Airflow's four processes and every descendant (LocalExecutor
workers, task supervisors, task processes), read before and after from /proc through psutil:
utime + stime of each live process plus cutime + cstime (the CPU of children it has reaped, so
task processes that exited during the backfill are counted by the process that waited for them).
PostgreSQL's and moto's CPU is reported beside it, the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python tools/sparkify_bench/__main__.py): find the packages
    for _path in (Path(__file__).resolve().parents[2] / "plugins", Path(__file__).resolve().parents[1]):
        if str(_path) not in sys.path:
            sys.path.insert(0, str(_path))

from sparkify_bench.bench import Bench  # noqa: E402
from sparkify_bench.drivers import DRIVERS  # noqa: E402
from sparkify_bench.plan import OUT, ROOT, SECTIONS, Plan  # noqa: E402
from sparkify_bench.report import report  # noqa: E402
from sparkify_local.config import RunnerError  # noqa: E402
from sparkify_local.progress import say  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DRIVERS:
        return DRIVERS[argv[0]](argv[1:])
    parser = argparse.ArgumentParser(prog="make bench BENCH_ARGS=…", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections (default all): {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true",
                        help="smoke mode: tiny sizes, every section (about 10 minutes on 2 idle cores)")
    parser.add_argument("--repeats", type=int, help="runs of the pipeline and of its floor, alternately (default 3)")
    parser.add_argument("--songs", type=int, help="song objects to seed (default all 14,896; --quick 300; 0 all)")
    parser.add_argument("--events-mib", type=lambda v: [int(x) for x in v.split(",")],
                        help="sizes of the generated daily logs in MiB (default 100,1024; --quick 2,10)")
    parser.add_argument("--memory-songs", type=int,
                        help="generated song objects for the memory section (default 100000; --quick 600; 0 skips)")
    parser.add_argument("--max-active-runs", type=int, default=4, help="of the backfills (default 4, as the DAG)")
    parser.add_argument("--parallelism", type=int, default=8, help="[core] parallelism (default 8, as make run)")
    parser.add_argument("--floor-all-tasks", action="store_true",
                        help="a @task in every position of the floor DAG, Begin/End included")
    parser.add_argument("--via-cli", action="store_true",
                        help="create backfills with `airflow backfill create` rather than the REST API")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    plan = Plan.make(args)
    if plan.repeats < 1:
        parser.error("--repeats must be at least 1")
    OUT.mkdir(exist_ok=True)
    bench = Bench(args, plan)
    say(f"make bench: sections {', '.join(s for s in SECTIONS if s in sections)}; "
        f"{'quick smoke sizes' if args.quick else 'full sizes'}; repeats {plan.repeats}")
    try:
        code = bench.run(sections)
    except RunnerError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr, flush=True)
        return 130
    text, md = report(bench.results)
    (OUT / "results.json").write_text(json.dumps(bench.results, indent=2, default=str))
    (OUT / "performance-figures.md").write_text(md + "\n")
    print(text, flush=True)
    say(f"results: {(OUT / 'results.json').relative_to(ROOT)}, {(OUT / 'performance-figures.md').relative_to(ROOT)}")
    return code


if __name__ == "__main__":
    import signal

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    raise SystemExit(main())
