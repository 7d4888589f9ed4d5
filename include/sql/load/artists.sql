{#- One row per artist_id. Where songs disagree on an artist's attributes, the row comes from
    the song that has coordinates, then a non-empty location, then the smallest song_id.
    Only new or changed rows are returned. -#}
SELECT artist_id, name, location, latitude, longitude
FROM (
    SELECT artist_id,
           artist_name      AS name,
           artist_location  AS location,
           artist_latitude  AS latitude,
           artist_longitude AS longitude,
           ROW_NUMBER() OVER (
               PARTITION BY artist_id
               ORDER BY CASE WHEN artist_latitude IS NULL OR artist_longitude IS NULL THEN 1 ELSE 0 END,
                        CASE WHEN artist_location IS NULL OR artist_location = '' THEN 1 ELSE 0 END,
                        song_id
           ) AS pick
    FROM {{ schema }}.staging_songs
    WHERE artist_id IS NOT NULL
) AS a
WHERE pick = 1
EXCEPT
SELECT artist_id, name, location, latitude, longitude FROM {{ schema }}.artists
