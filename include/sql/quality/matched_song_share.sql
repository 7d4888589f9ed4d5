-- Share of all songplays (0..1) matched to a song; 1 while there are none.
SELECT CASE WHEN COUNT(*) = 0 THEN 1.0
            ELSE SUM(CASE WHEN song_id IS NOT NULL THEN 1.0 ELSE 0.0 END) / COUNT(*) END
FROM {{ schema }}.songplays
