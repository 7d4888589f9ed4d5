"""OpenLineage datasets on Redshift, named as the amazon provider's ``S3ToRedshiftOperator`` names them.

Redshift cannot run here: the ``redshift`` connection is a real ``redshift`` connection whose DB-API
connection is :class:`FakeRedshift`, which records the statements sent (its catalogue is empty, so
the datasets carry their names without a schema facet). The PostgreSQL side, with schemas, is
tested through a real run in ``tests/lineage``.
"""

from __future__ import annotations

from sparkify import lineage

# The connection's host is sparkify.abc123xyz.us-west-2.redshift.amazonaws.com, port 5439, database dev.
NAMESPACE = "redshift://sparkify.us-west-2:5439"


def test_load_lineage_names_redshift_tables_and_reads_their_schema_from_svv_redshift_columns(redshift):
    result = lineage.load_lineage("redshift", schema="public", table="songplays", select="load/songplays.sql",
                                  personal_data="hash",
                                  sql="DELETE FROM public.songplays; INSERT INTO public.songplays")

    assert [(d.namespace, d.name) for d in result.outputs] == [(NAMESPACE, "dev.public.songplays")]
    assert sorted((d.namespace, d.name) for d in result.inputs) == [
        (NAMESPACE, "dev.public.staging_events"), (NAMESPACE, "dev.public.staging_songs")]
    columns = result.outputs[0].facets["columnLineage"].fields
    assert {(f.namespace, f.name, f.field) for f in columns["user_agent"].inputFields} == {
        (NAMESPACE, "dev.public.staging_events", "useragent")}
    assert result.job_facets["sql"].query == "DELETE FROM public.songplays;\nINSERT INTO public.songplays"
    # The provider's catalogue query for Redshift, and nothing that writes.
    inputs, outputs = [s for s in redshift.sql if "FROM SVV_REDSHIFT_COLUMNS" in s]
    for query in inputs, outputs:
        assert "database_name = 'dev' AND SVV_REDSHIFT_COLUMNS.schema_name = 'public'" in query
    assert inputs.endswith("table_name IN ('staging_events', 'staging_songs')"), inputs
    assert outputs.endswith("table_name IN ('songplays')"), outputs
    assert all(s.upper().startswith("SELECT") for s in redshift.sql), redshift.sql


def test_staging_lineage_names_s3_as_the_amazon_provider(redshift):
    result = lineage.staging_lineage(
        "redshift", schema="public", table="staging_events", bucket="udacity-dend",
        sources=["log_data/2018/11/2018-11-04-events.json", "log_data/2018/11/2018-11-04-events.json"],
        jsonpaths=("udacity-dend", "log_json_path.json"),
        result={"listed": False, "staged_objects": 1, "rows": 6, "fetched_objects": 0, "changed_objects": []},
    )

    assert [(d.namespace, d.name) for d in result.inputs] == [
        ("s3://udacity-dend", "log_data/2018/11/2018-11-04-events.json"), ("s3://udacity-dend", "log_json_path.json")]
    (out,) = result.outputs
    assert (out.namespace, out.name) == (NAMESPACE, "dev.public.staging_events")
    assert (out.outputFacets["outputStatistics"].rowCount, out.outputFacets["outputStatistics"].fileCount) == (6, 1)
    facet = result.run_facets["sparkifyStaging"]
    assert (facet.listed, facet.stagedObjects, facet.rows, facet.changedObjects) == (False, 1, 6, 0)
    assert [s for s in redshift.sql if "SVV_REDSHIFT_COLUMNS" in s], redshift.sql
