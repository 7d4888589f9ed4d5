{#- Merge by key, portable to Redshift and PostgreSQL: the new rows go to a private batch table,
    the target's rows with the same key are deleted, and the batch is inserted (Redshift's
    documented staging-table merge). The select decides which rows are new or changed. -#}
{%- from 'text.jinja' import compared with context %}
LOCK TABLE {{ schema }}.{{ table }};

CREATE TEMPORARY TABLE sparkify_merge (LIKE {{ schema }}.{{ table }});

INSERT INTO sparkify_merge ({{ columns | join(', ') }})
{% include select %};

DELETE FROM {{ schema }}.{{ table }}
USING sparkify_merge m
WHERE {% for k in key %}{% if k in text_columns %}{{ compared(schema ~ '.' ~ table ~ '.' ~ k) }} = {{ compared('m.' ~ k) }}{% else %}{{ schema }}.{{ table }}.{{ k }} = m.{{ k }}{% endif %}{{ " AND " if not loop.last }}{% endfor %};

INSERT INTO {{ schema }}.{{ table }} ({{ columns | join(', ') }})
SELECT {{ columns | join(', ') }} FROM sparkify_merge;

DROP TABLE sparkify_merge;
