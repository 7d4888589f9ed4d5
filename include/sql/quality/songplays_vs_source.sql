-- songplays of the interval minus the NextSong events counted per hour when the objects were
-- read from S3 (load_manifest_hours): 0 when nothing was lost between the source and the fact.
SELECT
    (SELECT COUNT(*) FROM {{ schema }}.songplays
      WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s)
  - (SELECT CAST(COALESCE(SUM(h.next_song_events), 0) AS BIGINT)
       FROM {{ schema }}.load_manifest_hours h
       JOIN {{ schema }}.load_manifest m ON m.s3_key = h.s3_key
      WHERE h.hour_start >= %(interval_start)s AND h.hour_start < %(interval_end)s)
