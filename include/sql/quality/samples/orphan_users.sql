-- Up to five songplays of the interval whose user_id is not in users.
SELECT sp.songplay_id, sp.user_id FROM {{ schema }}.songplays sp
LEFT JOIN {{ schema }}.users u ON u.user_id = sp.user_id
WHERE sp.start_time >= %(interval_start)s AND sp.start_time < %(interval_end)s AND u.user_id IS NULL
ORDER BY sp.songplay_id LIMIT 5
