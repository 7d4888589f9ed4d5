{#- The rows Redshift rejected in the COPY that just failed on this connection (up to five), from
    stl_load_errors (provisioned clusters only; the fallback when sys_load_error_detail is not
    readable or has none): pg_last_copy_id() is the session's last COPY, failed ones included;
    its rows for the manifest's objects. -#}
SELECT TRIM(filename), line_number, TRIM(colname), TRIM(raw_field_value), TRIM(err_reason)
FROM stl_load_errors
WHERE query = pg_last_copy_id()
  AND TRIM(filename) IN ({% for i in range(count) %}%(f{{ i }})s{{ ", " if not loop.last }}{% endfor %})
ORDER BY 1, 2
LIMIT 5;
