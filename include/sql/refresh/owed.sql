{#- What the load of {{ table }} owes (see sparkify/refresh.py): the refreshes noted for it by its own
    run, and those whose days overlap the run's interval, whoever noted them. load_refresh is locked
    first, then the table (whose mode file locks it again): every load that reads or writes
    load_refresh takes it before anything else, so they take turns without deadlock, and it stays
    locked until the load pays (paid.sql) in the same transaction. LOCK is ACCESS EXCLUSIVE on both
    warehouses (docs/backfills.md gives the lock order). -#}
LOCK TABLE {{ schema }}.load_refresh, {{ schema }}.{{ table }};

SELECT MIN(range_start), MAX(range_end) FROM {{ schema }}.load_refresh
WHERE table_name = %(refresh_table)s
  AND (run_id = %(run_id)s OR (range_start < %(run_end)s AND range_end > %(run_start)s));
