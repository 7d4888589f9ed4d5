{#- The daily event files the run's interval needs (one per UTC day it touches, bound as
    source_key_0, source_key_1, …) that the load manifest does not hold: 0 when every one was
    staged. The second column names the missing ones, for the failure message. -#}
{%- if source_keys %}
SELECT COUNT(*),
       'not staged: ' || {% if dialect == 'postgres' -%}
       STRING_AGG(needed.s3_key, ', ' ORDER BY needed.s3_key)
       {%- else -%}
       LISTAGG(needed.s3_key, ', ') WITHIN GROUP (ORDER BY needed.s3_key)
       {%- endif %}
FROM (
{%- for name in source_keys %}
    SELECT CAST(%({{ name }})s AS VARCHAR(1024)) AS s3_key{{ " UNION ALL" if not loop.last }}
{%- endfor %}
) AS needed
WHERE NOT EXISTS (SELECT 1 FROM {{ schema }}.load_manifest m WHERE m.s3_key = needed.s3_key)
{%- else %}
SELECT 0, CAST(NULL AS VARCHAR(1))
{%- endif %}
