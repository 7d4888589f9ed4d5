{%- from 'text.jinja' import compared, same with context -%}
{#- One row per song_id from the staged songs; only rows that are new or differ from what the
    table holds, so an hour with no new songs writes nothing. Keys and text compare as Redshift
    compares VARCHAR (text.jinja): a song_id or title that differs only in trailing blanks is the
    same. -#}
SELECT s.song_id, s.title, s.artist_id, s.year, s.duration
FROM (
    SELECT song_id, title, artist_id, year, duration,
           ROW_NUMBER() OVER (PARTITION BY {{ compared('song_id') }} ORDER BY title, artist_id, year, duration) AS pick
    FROM {{ schema }}.staging_songs
    WHERE song_id IS NOT NULL
) AS s
WHERE s.pick = 1
  AND NOT EXISTS (
    SELECT 1 FROM {{ schema }}.songs t
    WHERE {{ compared('t.song_id') }} = {{ compared('s.song_id') }}
      AND {{ same('t.title', 's.title', text=true) }}
      AND {{ same('t.artist_id', 's.artist_id', text=true) }}
      AND {{ same('t.year', 's.year') }}
      AND {{ same('t.duration', 's.duration') }}
  )
