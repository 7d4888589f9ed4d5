{%- from 'text.jinja' import compared with context -%}
{#- The hours whose songplays differ from the distinct NextSong events staged for them, with both
    counts. -#}
{%- from 'quality/samples/hours_differ.jinja' import hours_differ with context -%}
{%- set counted -%}
SELECT DATE_TRUNC('hour', TIMESTAMP 'epoch' + (e.ts / 1000) * INTERVAL '1 second') AS hour_start, COUNT(*) AS n
  FROM (SELECT DISTINCT sessionid, iteminsession, ts FROM {{ schema }}.staging_events
         WHERE {{ compared('page') }} = 'NextSong' AND ts >= %(interval_start_ms)s AND ts < %(interval_end_ms)s) AS e
 GROUP BY DATE_TRUNC('hour', TIMESTAMP 'epoch' + (e.ts / 1000) * INTERVAL '1 second')
{%- endset %}
{{ hours_differ(counted, "next_song_events_staged") }}
