{#-
  Every check result of the runs whose interval overlaps the window [start, end), from each run's
  latest attempt only (a cleared or retried run records its checks again, with a later checked_at).
-#}
SELECT r.run_id, r.interval_start, r.interval_end, r.check_name, r.table_name, r.column_name,
       r.severity, r.actual, r.expected, r.passed, r.checked_at, r.description, r.samples
FROM {{ schema }}.quality_results r
JOIN (
    SELECT run_id, MAX(checked_at) AS checked_at
    FROM {{ schema }}.quality_results
    WHERE dag_id = %(dag_id)s AND interval_start < %(end)s AND interval_end > %(start)s
    GROUP BY run_id
) latest ON latest.run_id = r.run_id AND latest.checked_at = r.checked_at
WHERE r.dag_id = %(dag_id)s
ORDER BY r.interval_start, r.run_id, r.check_name;
