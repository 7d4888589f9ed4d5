{%- from 'text.jinja' import compared with context -%}
-- Up to five songplays of the interval whose song_id is not in songs.
SELECT sp.songplay_id, sp.song_id FROM {{ schema }}.songplays sp
LEFT JOIN {{ schema }}.songs s ON {{ compared('s.song_id') }} = {{ compared('sp.song_id') }}
WHERE sp.start_time >= %(interval_start)s AND sp.start_time < %(interval_end)s
  AND sp.song_id IS NOT NULL AND s.song_id IS NULL
ORDER BY sp.songplay_id LIMIT 5
