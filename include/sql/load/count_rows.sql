SELECT COUNT(*) FROM {{ schema }}.{{ table }}
{%- if scope_column %} WHERE {{ scope_column }} >= %(interval_start)s AND {{ scope_column }} < %(interval_end)s{% endif %}
