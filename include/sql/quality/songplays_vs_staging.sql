{%- from 'text.jinja' import compared with context -%}
-- songplays of the interval minus the distinct NextSong events staged for it: 0 when they agree.
SELECT
    (SELECT COUNT(*) FROM {{ schema }}.songplays
      WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s)
  - (SELECT COUNT(*) FROM (
        SELECT DISTINCT sessionid, iteminsession, ts FROM {{ schema }}.staging_events
         WHERE {{ compared('page') }} = 'NextSong' AND ts >= %(interval_start_ms)s AND ts < %(interval_end_ms)s) AS e)
