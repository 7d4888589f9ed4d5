"""``make aws-check``: the pipeline's acceptance run on a real AWS account.

It states what it will create and what that costs, asks (or takes ``YES=1``), then runs
``sparkify_setup``, loads one day of the public logs (``s3://udacity-dend``, us-west-2) with a small
song prefix through ``sparkify_etl``, computes the expected star tables from the same objects with
tests/reference.py's rules, compares every table, runs ``sparkify_teardown`` and says what it found
and what it removed. Without AWS credentials it stops before anything else.

Development tooling: it imports the pipeline (and tests/reference.py, like make bench); the pipeline
never imports it, and the production image leaves tools/ out.
"""
