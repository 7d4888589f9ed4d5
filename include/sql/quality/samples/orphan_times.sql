-- Up to five songplays of the interval whose start_time is not in time.
SELECT sp.songplay_id, sp.start_time FROM {{ schema }}.songplays sp
LEFT JOIN {{ schema }}.time t ON t.start_time = sp.start_time
WHERE sp.start_time >= %(interval_start)s AND sp.start_time < %(interval_end)s AND t.start_time IS NULL
ORDER BY sp.songplay_id LIMIT 5
