{#- Which of the given tables hold at least one row: asked when svv_table_info showed none, to tell
    a user who may not read it from a warehouse whose tables are all empty (which it omits too).
    Reads one row of each at most. The tables are validated names that exist. -#}
{% for table in tables %}
SELECT CAST('{{ table }}' AS VARCHAR(128)) FROM (SELECT 1 FROM {{ schema }}.{{ table }} LIMIT 1) AS t
{{ "UNION ALL" if not loop.last }}
{% endfor %};
