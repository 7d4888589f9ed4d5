{#- Up to five rows that fail a table check's statement (run only for a failed check): the table's
    key and the columns the statement names (every column when the table's key is not known). -#}
SELECT {{ shown | join(", ") if shown else "*" }} FROM {{ schema }}.{{ table }}
WHERE (CASE WHEN {{ check_statement }} THEN 0 ELSE 1 END) = 1
{%- if scope_column %} AND {{ scope_column }} >= %(interval_start)s AND {{ scope_column }} < %(interval_end)s{% endif %}
{%- if shown %} ORDER BY {{ shown | join(", ") }}{% endif %} LIMIT 5
