{#- Upkeep of one table after loads that delete and insert. Outside any transaction (autocommit):
    neither warehouse runs VACUUM inside one. Redshift: VACUUM (delete and sort) to the threshold
    that decided it was needed (Redshift's own default, 95 percent, stated) and ANALYZE, each only
    when needed; PostgreSQL: VACUUM ANALYZE. -#}
{% if dialect == 'redshift' %}
{% if vacuum %}VACUUM {{ schema }}.{{ table }} TO {{ threshold }} PERCENT;{% endif %}
{% if analyze %}ANALYZE {{ schema }}.{{ table }};{% endif %}
{% else %}
VACUUM (ANALYZE) {{ schema }}.{{ table }};
{% endif %}
