{#- Analysts read the star schema and the data-quality history, and nothing else: no staging, no
    load bookkeeping, no writes. Re-run after a migration adds a table (idempotent). -#}
{%- set to = ('ROLE ' if dialect == 'redshift' else '') ~ role %}
GRANT USAGE ON SCHEMA {{ schema }} TO {{ to }};
{% for table in readable %}
REVOKE ALL ON {{ schema }}.{{ table }} FROM {{ to }};
GRANT SELECT ON {{ schema }}.{{ table }} TO {{ to }};
{% endfor %}
{% for table in private %}
REVOKE ALL ON {{ schema }}.{{ table }} FROM {{ to }};
{% endfor %}
