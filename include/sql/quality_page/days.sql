{#- The latest days with check results (the page's index of windows to open): each day's runs, and
    how many of them failed an error check in some attempt. -#}
SELECT DATE_TRUNC('day', interval_start) AS day,
       COUNT(DISTINCT run_id) AS runs,
       COUNT(DISTINCT CASE WHEN NOT passed AND severity = 'error' THEN run_id END) AS failed_runs
FROM {{ schema }}.quality_results
WHERE dag_id = %(dag_id)s
GROUP BY 1
ORDER BY 1 DESC
LIMIT {{ limit | default(14) | int }};
