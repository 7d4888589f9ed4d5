{#- Rebuild: delete the rows this load owns, then insert them afresh, in one transaction.
    DELETE rather than TRUNCATE, which commits at once on Redshift. With scope_column, the load
    owns only the rows of the run's interval [interval_start, interval_end). -#}
LOCK TABLE {{ schema }}.{{ table }};

DELETE FROM {{ schema }}.{{ table }}
{%- if scope_column %}
WHERE {{ scope_column }} >= %(interval_start)s AND {{ scope_column }} < %(interval_end)s
{%- endif %};

INSERT INTO {{ schema }}.{{ table }} ({{ columns | join(', ') }})
{% include select %};
