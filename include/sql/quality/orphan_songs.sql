{%- from 'text.jinja' import compared with context -%}
-- songplays of the interval with a song_id that is not in songs (NULL is allowed: no match).
SELECT COUNT(*) FROM {{ schema }}.songplays sp
LEFT JOIN {{ schema }}.songs s ON {{ compared('s.song_id') }} = {{ compared('sp.song_id') }}
WHERE sp.start_time >= %(interval_start)s AND sp.start_time < %(interval_end)s
  AND sp.song_id IS NOT NULL AND s.song_id IS NULL
