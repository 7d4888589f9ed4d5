{#- One table check of common-sql's vocabulary: a boolean expression over the table's rows. -#}
SELECT CASE WHEN {{ check_statement }} THEN 1 ELSE 0 END FROM {{ schema }}.{{ table }}
{%- if scope_column %} WHERE {{ scope_column }} >= %(interval_start)s AND {{ scope_column }} < %(interval_end)s{% endif %}
