{#- The hours whose songplays differ from the NextSong events counted when the objects were read
    from S3, with both counts. -#}
{%- from 'quality/samples/hours_differ.jinja' import hours_differ with context -%}
{%- set counted -%}
SELECT h.hour_start, CAST(SUM(h.next_song_events) AS BIGINT) AS n
  FROM {{ schema }}.load_manifest_hours h
  JOIN {{ schema }}.load_manifest m ON m.s3_key = h.s3_key
 WHERE h.hour_start >= %(interval_start)s AND h.hour_start < %(interval_end)s
 GROUP BY h.hour_start
{%- endset %}
{{ hours_differ(counted, "next_song_events_read") }}
