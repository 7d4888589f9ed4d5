{%- from 'text.jinja' import compared with context -%}
-- 1 when the run's interval has events of logged-in users staged but users holds no row at all.
SELECT CASE
    WHEN EXISTS (SELECT 1 FROM {{ schema }}.staging_events WHERE userid IS NOT NULL AND {{ compared('userid') }} <> ''
                   AND ts >= %(interval_start_ms)s AND ts < %(interval_end_ms)s)
     AND NOT EXISTS (SELECT 1 FROM {{ schema }}.users) THEN 1 ELSE 0 END
