SELECT CASE
    WHEN EXISTS (SELECT 1 FROM {{ schema }}.staging_songs WHERE song_id IS NOT NULL)
     AND NOT EXISTS (SELECT 1 FROM {{ schema }}.songs) THEN 1 ELSE 0 END
