{#- Refreshes owed to the loads of {{ tables | join(', ') }}: reload [range_start, range_end). Noted in the
    transaction that makes them due (the staging of a changed object, or a load that reloaded days
    another table is rebuilt from), so they exist exactly when it commits. -#}
LOCK TABLE {{ schema }}.load_refresh;

INSERT INTO {{ schema }}.load_refresh (table_name, range_start, range_end, run_id, noted_at) VALUES
{%- for table in tables %}
    (%(table{{ loop.index0 }})s, %(range_start)s, %(range_end)s, %(run_id)s, %(noted_at)s){{ "," if not loop.last }}
{%- endfor %};
