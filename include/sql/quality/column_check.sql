{#- One column check of common-sql's vocabulary; `expression` comes from
    SQLColumnCheckOperator.column_checks with the (validated) column filled in. -#}
SELECT {{ expression }} FROM {{ schema }}.{{ table }}
{%- if scope_column %} WHERE {{ scope_column }} >= %(interval_start)s AND {{ scope_column }} < %(interval_end)s{% endif %}
