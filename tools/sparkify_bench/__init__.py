"""make bench: the pipeline against its floors (``python -m sparkify_bench --help``).

Modules, one concern each: ``__main__`` (the options, main), ``plan`` (constants and sizes), ``bench``
(Bench: the private stack, timed backfills, the run), ``staging``, ``backfills`` and ``month`` (the
sections), ``airflow_api`` (Airflow's state, read through its REST API: never its metadata database),
``stack`` (BenchStack), ``drivers`` (the ``_stage``, ``_get`` and ``_shape`` subcommands it runs as
``python -m sparkify_bench …``), ``warehouse`` (psycopg on the warehouse databases), ``data`` (generated
inputs), ``stats``, ``machine``, ``report`` (text and Markdown) and ``plot`` (matplotlib, Agg).
"""
