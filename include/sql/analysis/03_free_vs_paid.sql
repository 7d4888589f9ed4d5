-- Plays by subscription level at the time of the play.
SELECT sp.level, COUNT(*) AS plays, COUNT(DISTINCT sp.user_id) AS users
FROM {{ schema }}.songplays sp
GROUP BY sp.level
ORDER BY sp.level
