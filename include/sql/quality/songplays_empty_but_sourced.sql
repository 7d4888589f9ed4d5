{%- from 'text.jinja' import compared with context -%}
-- 1 when the run's interval has NextSong events staged but songplays holds none for it; a quiet
-- hour (no NextSong event in the interval) is never a failure, even on an empty warehouse.
SELECT CASE
    WHEN EXISTS (SELECT 1 FROM {{ schema }}.staging_events
                  WHERE {{ compared('page') }} = 'NextSong' AND ts >= %(interval_start_ms)s AND ts < %(interval_end_ms)s)
     AND NOT EXISTS (SELECT 1 FROM {{ schema }}.songplays
                      WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s) THEN 1 ELSE 0 END
