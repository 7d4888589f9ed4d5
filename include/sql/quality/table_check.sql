{#- One table check as common-sql's SQLTableCheckOperator evaluates it: the boolean check_statement on
    every row (of the run's interval, with a scope column), 1 when every row passes. Unlike
    common-sql (whose MIN over no rows is NULL, a failure), an empty scope passes: a quiet hour is
    normal here. -#}
SELECT COALESCE(MIN(CASE WHEN {{ check_statement }} THEN 1 ELSE 0 END), 1) FROM {{ schema }}.{{ table }}
{%- if scope_column %} WHERE {{ scope_column }} >= %(interval_start)s AND {{ scope_column }} < %(interval_end)s{% endif %}
