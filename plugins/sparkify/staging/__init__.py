"""Staging S3 JSON into a warehouse staging table: what ``StageToRedshiftOperator`` delegates to.

- :mod:`.params`: the operator's arguments, validated (the AWS region pattern lives there).
- :mod:`.sources`: which objects a run stages: its own (missing-file policy), earlier days', a prefix.
- :mod:`.manifest`: ``load_manifest`` bookkeeping: what was listed, what is new or changed, what was staged.
- :mod:`.late_data`: the days a changed object's events fall on, which the loads then owe a reload of.
- :mod:`.postgres_copy`: the PostgreSQL backend (reads S3 itself, ``COPY … FROM STDIN``).
- :mod:`.redshift_copy`: the Redshift backend (a manifest per ``COPY``, credentials masked).
- :mod:`.run`: the staging transaction that ties them together.
"""
