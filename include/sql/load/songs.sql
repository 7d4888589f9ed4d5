{#- One row per song_id from the staged songs; only rows that are new or differ from what the
    table holds, so an hour with no new songs writes nothing. -#}
SELECT song_id, title, artist_id, year, duration
FROM (
    SELECT song_id, title, artist_id, year, duration,
           ROW_NUMBER() OVER (PARTITION BY song_id ORDER BY title, artist_id, year, duration) AS pick
    FROM {{ schema }}.staging_songs
    WHERE song_id IS NOT NULL
) AS s
WHERE pick = 1
EXCEPT
SELECT song_id, title, artist_id, year, duration FROM {{ schema }}.songs
