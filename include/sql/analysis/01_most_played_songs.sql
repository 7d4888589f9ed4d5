-- Most played songs (plays matched to a song of the catalogue).
SELECT s.title, a.name AS artist, COUNT(*) AS plays
FROM {{ schema }}.songplays sp
JOIN {{ schema }}.songs s ON s.song_id = sp.song_id
LEFT JOIN {{ schema }}.artists a ON a.artist_id = sp.artist_id
GROUP BY s.title, a.name
ORDER BY plays DESC, s.title, artist
LIMIT 5
