{%- from 'text.jinja' import compared, same with context -%}
{#- One row per artist_id. Where songs disagree on an artist's attributes, the row comes from
    the song that has coordinates, then a non-empty location, then the smallest song_id.
    Only new or changed rows are returned; keys and text compare as Redshift compares VARCHAR
    (text.jinja). -#}
SELECT a.artist_id, a.name, a.location, a.latitude, a.longitude
FROM (
    SELECT artist_id,
           artist_name      AS name,
           artist_location  AS location,
           artist_latitude  AS latitude,
           artist_longitude AS longitude,
           ROW_NUMBER() OVER (
               PARTITION BY {{ compared('artist_id') }}
               ORDER BY CASE WHEN artist_latitude IS NULL OR artist_longitude IS NULL THEN 1 ELSE 0 END,
                        CASE WHEN artist_location IS NULL OR {{ compared('artist_location') }} = '' THEN 1 ELSE 0 END,
                        song_id
           ) AS pick
    FROM {{ schema }}.staging_songs
    WHERE artist_id IS NOT NULL
) AS a
WHERE a.pick = 1
  AND NOT EXISTS (
    SELECT 1 FROM {{ schema }}.artists t
    WHERE {{ compared('t.artist_id') }} = {{ compared('a.artist_id') }}
      AND {{ same('t.name', 'a.name', text=true) }}
      AND {{ same('t.location', 'a.location', text=true) }}
      AND {{ same('t.latitude', 'a.latitude') }}
      AND {{ same('t.longitude', 'a.longitude') }}
  )
