-- Users with the most plays, with their current level.
SELECT u.user_id, u.first_name, u.last_name, u.level, COUNT(*) AS plays
FROM {{ schema }}.songplays sp
JOIN {{ schema }}.users u ON u.user_id = sp.user_id
GROUP BY u.user_id, u.first_name, u.last_name, u.level
ORDER BY plays DESC, u.user_id
LIMIT 5
