SELECT CASE
    WHEN EXISTS (SELECT 1 FROM {{ schema }}.staging_songs WHERE artist_id IS NOT NULL)
     AND NOT EXISTS (SELECT 1 FROM {{ schema }}.artists) THEN 1 ELSE 0 END
