{#- The refreshes owed.sql found, paid by the load that just reloaded their range (same transaction,
    load_refresh still locked, so they are exactly the rows it found). -#}
DELETE FROM {{ schema }}.load_refresh
WHERE table_name = %(refresh_table)s
  AND (run_id = %(run_id)s OR (range_start < %(run_end)s AND range_end > %(run_start)s));
