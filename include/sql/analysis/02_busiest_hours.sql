-- Busiest hours of the day (UTC), by plays.
SELECT t.hour, COUNT(*) AS plays
FROM {{ schema }}.songplays sp
JOIN {{ schema }}.time t ON t.start_time = sp.start_time
GROUP BY t.hour
ORDER BY plays DESC, t.hour
LIMIT 5
