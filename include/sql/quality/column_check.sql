{#- One column check of common-sql's vocabulary; `expression` comes from
    SQLColumnCheckOperator.column_checks with the (validated) column filled in; on PostgreSQL, a
    unique or distinct check of a text column counts values as Redshift does, trailing blanks
    aside (RTRIM, see text.jinja). -#}
SELECT {{ expression_postgres if dialect == 'postgres' else expression }} FROM {{ schema }}.{{ table }}
{%- if scope_column %} WHERE {{ scope_column }} >= %(interval_start)s AND {{ scope_column }} < %(interval_end)s{% endif %}
