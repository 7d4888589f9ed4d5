{#- Upkeep of one table after loads that delete and insert. Outside any transaction (autocommit):
    neither warehouse runs VACUUM inside one. Redshift: VACUUM (delete and sort, to its default 95
    percent) and ANALYZE, each only when needed; PostgreSQL: VACUUM ANALYZE. -#}
{% if dialect == 'redshift' %}
{% if vacuum %}VACUUM {{ schema }}.{{ table }};{% endif %}
{% if analyze %}ANALYZE {{ schema }}.{{ table }};{% endif %}
{% else %}
VACUUM (ANALYZE) {{ schema }}.{{ table }};
{% endif %}
