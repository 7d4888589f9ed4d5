{%- from 'text.jinja' import compared with context -%}
-- Up to five songplays of the interval whose artist_id is not in artists.
SELECT sp.songplay_id, sp.artist_id FROM {{ schema }}.songplays sp
LEFT JOIN {{ schema }}.artists a ON {{ compared('a.artist_id') }} = {{ compared('sp.artist_id') }}
WHERE sp.start_time >= %(interval_start)s AND sp.start_time < %(interval_end)s
  AND sp.artist_id IS NOT NULL AND a.artist_id IS NULL
ORDER BY sp.songplay_id LIMIT 5
