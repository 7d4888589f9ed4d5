-- The first five hours of the interval whose songplays differ from the distinct NextSong events
-- staged for them, with both counts.
SELECT COALESCE(f.hour_start, s.hour_start) AS hour_start,
       COALESCE(f.n, 0) AS songplays, COALESCE(s.n, 0) AS next_song_events_staged
FROM (SELECT DATE_TRUNC('hour', start_time) AS hour_start, COUNT(*) AS n FROM {{ schema }}.songplays
       WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s
       GROUP BY DATE_TRUNC('hour', start_time)) AS f
FULL OUTER JOIN (
      SELECT DATE_TRUNC('hour', TIMESTAMP 'epoch' + (e.ts / 1000) * INTERVAL '1 second') AS hour_start,
             COUNT(*) AS n
        FROM (SELECT DISTINCT sessionid, iteminsession, ts FROM {{ schema }}.staging_events
               WHERE page = 'NextSong' AND ts >= %(interval_start_ms)s AND ts < %(interval_end_ms)s) AS e
       GROUP BY DATE_TRUNC('hour', TIMESTAMP 'epoch' + (e.ts / 1000) * INTERVAL '1 second')) AS s
  ON s.hour_start = f.hour_start
WHERE COALESCE(f.n, 0) <> COALESCE(s.n, 0)
ORDER BY 1 LIMIT 5
