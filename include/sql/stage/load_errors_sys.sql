{#- The rows Redshift rejected in the COPY that just failed on this connection (up to five), from
    sys_load_error_detail (provisioned clusters, Serverless and concurrency scaling all have it).
    Its latest COPY with errors of this session, restricted to the manifest's objects; the view
    keeps no raw value, so the fourth column is NULL. Run after the failed transaction's ROLLBACK,
    on the same connection. -#}
SELECT TRIM(d.file_name), d.line_number, TRIM(d.column_name), CAST(NULL AS VARCHAR(1)), TRIM(d.error_message)
FROM sys_load_error_detail d
WHERE d.session_id = pg_backend_pid()
  AND d.query_id = (
      SELECT MAX(l.query_id) FROM sys_load_error_detail l
      WHERE l.session_id = pg_backend_pid()
        AND TRIM(l.file_name) IN ({% for i in range(count) %}%(f{{ i }})s{{ ", " if not loop.last }}{% endfor %})
  )
ORDER BY 1, 2
LIMIT 5;
