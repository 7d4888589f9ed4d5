-- 1 when staging holds NextSong events but songplays holds no row at all; a quiet hour on an
-- empty warehouse (no NextSong event staged yet) is not a failure.
SELECT CASE
    WHEN EXISTS (SELECT 1 FROM {{ schema }}.staging_events WHERE page = 'NextSong')
     AND NOT EXISTS (SELECT 1 FROM {{ schema }}.songplays) THEN 1 ELSE 0 END
