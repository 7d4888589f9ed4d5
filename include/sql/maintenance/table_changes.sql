{#- Per table of the schema, what the warehouse itself says changed since its last VACUUM and
    ANALYZE: rows modified since statistics were gathered, rows deleted but not reclaimed, (Redshift)
    the share of rows out of sort order, and the rows the table holds, deleted ones included. A
    table with none of these needs no upkeep. -#}
{% if dialect == 'redshift' %}
-- svv_table_info: stats_off is 0 when statistics are current; tbl_rows counts rows marked for
-- deletion that estimated_visible_rows does not; unsorted is the percentage of unsorted rows. It
-- is visible only to superusers (and holders of sys:operator): others get no row, as they do for
-- an empty table.
SELECT "table"::VARCHAR(128), COALESCE(stats_off, 0), COALESCE(tbl_rows - estimated_visible_rows, 0),
       COALESCE(unsorted, 0), COALESCE(tbl_rows, 0)
FROM svv_table_info
WHERE "schema" = %(schema)s
ORDER BY 1;
{% else %}
-- pg_stat_user_tables: n_mod_since_analyze and n_dead_tup are 0 right after VACUUM ANALYZE.
SELECT relname::VARCHAR(128), n_mod_since_analyze, n_dead_tup, 0, n_live_tup + n_dead_tup
FROM pg_stat_user_tables
WHERE schemaname = %(schema)s
ORDER BY 1;
{% endif %}
