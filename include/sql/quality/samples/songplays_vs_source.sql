-- The first five hours of the interval whose songplays differ from the NextSong events counted
-- when the objects were read from S3, with both counts.
SELECT COALESCE(f.hour_start, s.hour_start) AS hour_start,
       COALESCE(f.n, 0) AS songplays, COALESCE(s.n, 0) AS next_song_events_read
FROM (SELECT DATE_TRUNC('hour', start_time) AS hour_start, COUNT(*) AS n FROM {{ schema }}.songplays
       WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s
       GROUP BY DATE_TRUNC('hour', start_time)) AS f
FULL OUTER JOIN (
      SELECT h.hour_start, CAST(SUM(h.next_song_events) AS BIGINT) AS n
        FROM {{ schema }}.load_manifest_hours h
        JOIN {{ schema }}.load_manifest m ON m.s3_key = h.s3_key
       WHERE h.hour_start >= %(interval_start)s AND h.hour_start < %(interval_end)s
       GROUP BY h.hour_start) AS s ON s.hour_start = f.hour_start
WHERE COALESCE(f.n, 0) <> COALESCE(s.n, 0)
ORDER BY 1 LIMIT 5
