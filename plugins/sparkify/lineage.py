"""OpenLineage facets of the four operators, built from what their ``execute`` learned.

The operators' ``get_openlineage_facets_on_complete`` (which the OpenLineage provider's listener also
calls when a task fails) import this module inside the method, and this module imports OpenLineage
inside its functions: parsing the DAG file imports neither (``tests/lineage``).

Datasets are named as the providers name them (docs/lineage.md): S3 as the amazon provider's
``S3ToRedshiftOperator`` does (namespace ``s3://<bucket>``, name the key or the prefix), warehouse
tables through the connection's hook (``postgres://<host>:<port>`` or
``redshift://<cluster>.<region>:<port>``, name ``<database>.<schema>.<table>``), with the schema
facet the OpenLineage provider reads from ``information_schema.columns`` (``SVV_REDSHIFT_COLUMNS``
on Redshift). A load's column lineage is what the provider's SQL parser finds in its SELECT file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from sparkify.tables import STAR_TABLES
from sparkify.warehouse import Warehouse, render

log = logging.getLogger(__name__)

# A bound parameter in the SQL files (they are written for pyformat): the parser cannot read it,
# and its value does not change which columns feed which.
_PARAMETER = re.compile(r"%\(\w+\)s")


# -- the warehouse's tables --------------------------------------------------------------------


def _database(conn_id: str, schema: str) -> tuple[Warehouse, Any, Any]:
    """The warehouse, its hook's OpenLineage ``DatabaseInfo`` and a SQL parser for its dialect."""
    from airflow.providers.openlineage.sqlparser import SQLParser

    wh = Warehouse(conn_id)
    connection = wh.hook.get_connection(conn_id)
    info = wh.hook.get_openlineage_database_info(connection)
    parser = SQLParser(dialect=wh.hook.get_openlineage_database_dialect(connection), default_schema=schema)
    return wh, info, parser


def table_datasets(conn_id: str, schema: str, inputs: Sequence[str], outputs: Sequence[str]) -> tuple[list, list]:
    """``schema``'s ``inputs`` and ``outputs`` tables as OpenLineage datasets named as the provider names
    them, each with its schema facet when ``information_schema`` could be read (without it otherwise)."""
    from openlineage.common.sql import DbTableMeta

    wh, info, parser = _database(conn_id, schema)
    namespace = parser.create_namespace(info)
    ins, outs = ([DbTableMeta(f"{schema}.{t}") for t in tables] for tables in (inputs, outputs))
    found: dict[str, Any] = {}
    try:
        read_in, read_out = parser.parse_table_schemas(wh.hook, ins, outs, info, namespace)
        found = {d.name: d for d in (*read_in, *read_out)}
    except Exception as err:  # the lineage never fails a task: the names alone then
        log.warning("OpenLineage: could not read the schema of %s (%s)", ", ".join(map(str, ins + outs)), err)
    named_in, named_out = parser.get_metadata_from_parser(ins, outs, info, namespace)
    return [found.get(d.name, d) for d in named_in], [found.get(d.name, d) for d in named_out]


# -- StageToRedshiftOperator -------------------------------------------------------------------


@cache
def _staging_run_facet() -> type:
    """``sparkifyStaging``: what one staging run found and copied (a custom run facet)."""
    import attrs
    from openlineage.client.facet_v2 import RunFacet

    @attrs.define
    class SparkifyStagingRunFacet(RunFacet):
        listed: bool  # the prefix was listed this run (always False for keys)
        stagedObjects: int  # noqa: N815 - OpenLineage's camelCase
        rows: int
        fetchedObjects: int  # noqa: N815
        changedObjects: int  # noqa: N815 - objects staged before, copied again because they changed

    return SparkifyStagingRunFacet


def staging_lineage(
    conn_id: str,
    *,
    schema: str,
    table: str,
    bucket: str,
    sources: Sequence[str],
    jsonpaths: tuple[str, str] | None,
    result: Mapping[str, Any],
) -> Any:
    """Inputs: each key the run needs (or the prefix it lists) and the JSONPaths file; output: the staging
    table with its schema and the rows and objects copied; the ``sparkifyStaging`` run facet."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import output_statistics_output_dataset as statistics

    inputs = [InputDataset(namespace=f"s3://{bucket}", name=name) for name in dict.fromkeys(sources)]
    if jsonpaths:
        inputs.append(InputDataset(namespace=f"s3://{jsonpaths[0]}", name=jsonpaths[1]))
    _, (table_ds,) = table_datasets(conn_id, schema, [], [table])
    staged, rows = int(result.get("staged_objects", 0)), int(result.get("rows", 0))
    output = OutputDataset(
        namespace=table_ds.namespace, name=table_ds.name, facets=table_ds.facets,
        outputFacets={"outputStatistics": statistics.OutputStatisticsOutputDatasetFacet(
            rowCount=rows, fileCount=staged)},
    )
    facet = _staging_run_facet()(
        listed=bool(result.get("listed")), stagedObjects=staged, rows=rows,
        fetchedObjects=int(result.get("fetched_objects", 0)), changedObjects=len(result.get("changed_objects", ())),
    )
    return OperatorLineage(inputs=inputs, outputs=[output], run_facets={"sparkifyStaging": facet})


# -- LoadFactOperator / LoadDimensionOperator ---------------------------------------------------


def load_lineage(conn_id: str, *, schema: str, table: str, select: str, personal_data: str, sql: str) -> Any:
    """Inputs: the tables the load's SELECT reads; output: ``table`` with its schema and the column lineage
    the SELECT implies (the provider's parser on ``include/sql/lineage/column_lineage.sql``); the job's
    SQL facet holds the statements that ran (``sql``).

    The table itself, read by a merge only to leave out rows it already holds (``EXCEPT``, the users'
    ``LEFT JOIN``), is not listed as its own input nor as a source of its columns."""
    from airflow.providers.openlineage.sqlparser import SQLParser, get_openlineage_facets_with_sql
    from openlineage.client.facet_v2 import sql_job

    wh = Warehouse(conn_id)
    columns = STAR_TABLES[table].columns
    statement = _PARAMETER.sub("NULL", render("lineage/column_lineage.sql", dialect=wh.dialect, schema=schema,
                                              table=table, columns=columns, select=select,
                                              personal_data=personal_data)).replace("%%", "%")
    lineage = get_openlineage_facets_with_sql(hook=wh.hook, sql=statement, conn_id=conn_id, database=None)
    if lineage is None or len(lineage.outputs) != 1:  # a hook without OpenLineage support, or no parse
        return lineage
    (output,) = lineage.outputs
    lineage.inputs = [d for d in lineage.inputs if d.name != output.name]
    facet = (output.facets or {}).get("columnLineage")
    if facet is not None:
        facet.fields = _target_columns(facet.fields, columns, output.name)
    lineage.job_facets["sql"] = sql_job.SQLJobFacet(query=SQLParser.normalize_sql(sql))
    return lineage



def _target_columns(fields: Mapping[str, Any], columns: Sequence[str], table_name: str) -> dict[str, Any]:
    """The parser's column lineage keyed by the table's columns: an INSERT fills columns by position,
    and the parser names a SELECT's unnamed expressions ``_0``, ``_1``… in order, so those are the
    columns the named ones leave; input fields of ``table_name`` itself are dropped."""
    unnamed = iter(c for c in columns if c not in fields)
    out: dict[str, Any] = {}
    for name in sorted(fields, key=lambda n: int(n[1:]) if re.fullmatch(r"_\d+", n) else -1):
        column = next(unnamed, None) if re.fullmatch(r"_\d+", name) else name
        sources = [f for f in fields[name].inputFields if f.name != table_name]
        if column in columns and sources:
            fields[name].inputFields = sources
            out[column] = fields[name]
    return {c: out[c] for c in columns if c in out}


# -- DataQualityOperator -----------------------------------------------------------------------


def quality_lineage(conn_id: str, *, schema: str, results: Iterable[Any], sql: Mapping[str, str]) -> Any:
    """Inputs: each table a check read, with its schema and every check's result on it as a
    ``DataQualityAssertionsDatasetFacet`` (the shape common-sql gives its own checks' results); checks
    of no table go to a ``test`` run facet, as common-sql does. ``results`` are common-sql
    ``SQLCheckResult``; ``sql`` maps a check's name to the SQL it ran."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq
    from openlineage.client.facet_v2 import test_run

    by_table: dict[str | None, list[Any]] = {}
    for r in results:
        by_table.setdefault(r.table, []).append(r)
    untabled = by_table.pop(None, [])
    tables, _ = table_datasets(conn_id, schema, list(by_table), [])
    inputs = []
    for ds, checks in zip(tables, by_table.values(), strict=True):
        assertions = [
            dq.Assertion(assertion=r.check_type, success=r.success, severity=r.severity, column=r.column,
                         name=r.name, description=r.description, expected=r.expected, actual=r.actual,
                         content=sql.get(r.name), contentType="sql")
            for r in checks
        ]
        inputs.append(InputDataset(namespace=ds.namespace, name=ds.name, facets=ds.facets,
                                   inputFacets={"dataQualityAssertions": dq.DataQualityAssertionsDatasetFacet(
                                       assertions=assertions)}))
    run_facets = {}
    if untabled:
        run_facets["test"] = test_run.TestRunFacet(tests=[
            test_run.TestExecution(name=r.name, status="pass" if r.success else "fail", severity=r.severity,
                                   type=r.check_type, description=r.description, expected=r.expected,
                                   actual=r.actual, content=sql.get(r.name), contentType="sql")
            for r in untabled
        ])
    return OperatorLineage(inputs=inputs, run_facets=run_facets)
