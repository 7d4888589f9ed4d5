{%- from 'text.jinja' import compared with context -%}
-- songplays of the interval with an artist_id that is not in artists (NULL is allowed).
SELECT COUNT(*) FROM {{ schema }}.songplays sp
LEFT JOIN {{ schema }}.artists a ON {{ compared('a.artist_id') }} = {{ compared('sp.artist_id') }}
WHERE sp.start_time >= %(interval_start)s AND sp.start_time < %(interval_end)s
  AND sp.artist_id IS NOT NULL AND a.artist_id IS NULL
