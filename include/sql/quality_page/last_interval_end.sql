{#- The end of the latest interval a DAG's checks recorded: the default window ends there. -#}
SELECT MAX(interval_end)
FROM {{ schema }}.quality_results
WHERE dag_id = %(dag_id)s;
