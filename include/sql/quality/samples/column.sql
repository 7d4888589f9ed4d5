{%- from 'text.jinja' import compared with context -%}
{#- Up to five rows that explain a failed column check (run only for a failed check):
    null_check: the rows whose column is NULL (their key, or every column when the key is the column);
    unique_check: the repeated values and how many rows hold each;
    min / max: the rows with the smallest / largest values, the offending ones first. -#}
{%- set scope = (scope_column ~ " >= %(interval_start)s AND " ~ scope_column ~ " < %(interval_end)s")
                if scope_column else "" %}
{%- if check_type == "unique_check" %}
SELECT MIN({{ column }}) AS {{ column }}, COUNT(*) AS rows_holding_it FROM {{ schema }}.{{ table }}
{%- if scope %} WHERE {{ scope }}{% endif %}
GROUP BY {{ compared(column) if text else column }} HAVING COUNT(*) > 1 ORDER BY COUNT(*) DESC, MIN({{ column }}) LIMIT 5
{%- else %}
SELECT {{ shown | join(", ") }} FROM {{ schema }}.{{ table }}
WHERE {{ column }} IS {{ "" if check_type == "null_check" else "NOT " }}NULL{% if scope %} AND {{ scope }}{% endif %}
ORDER BY {% if check_type == "max" %}{{ column }} DESC, {% elif check_type == "min" %}{{ column }}, {% endif %}
{{- shown | join(", ") }} LIMIT 5
{%- endif %}
