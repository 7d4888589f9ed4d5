{#- The pipeline's own role: reads and writes every table of the schema (staging, star,
    bookkeeping) and creates its temporary merge tables. VACUUM and the migrations need the
    tables' owner, the user that ran `python -m sparkify.tables migrate`. -#}
{%- set to = ('ROLE ' if dialect == 'redshift' else '') ~ role %}
GRANT USAGE ON SCHEMA {{ schema }} TO {{ to }};
{% for table in tables %}
GRANT SELECT, INSERT, UPDATE, DELETE ON {{ schema }}.{{ table }} TO {{ to }};
{% endfor %}
