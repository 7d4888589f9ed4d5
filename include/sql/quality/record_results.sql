INSERT INTO {{ schema }}.quality_results
    (run_id, dag_id, interval_start, interval_end, check_name, table_name, column_name,
     severity, actual, expected, passed, checked_at, description, samples)
VALUES
{%- for i in range(count) %}
    (%(run_id)s, %(dag_id)s, %(interval_start)s, %(interval_end)s, %(n{{ i }})s, %(t{{ i }})s, %(c{{ i }})s,
     %(s{{ i }})s, %(a{{ i }})s, %(x{{ i }})s, %(p{{ i }})s, %(checked_at)s, %(d{{ i }})s, %(e{{ i }})s)
     {{- "," if not loop.last }}
{%- endfor %};
