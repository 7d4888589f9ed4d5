SELECT CASE
    WHEN EXISTS (SELECT 1 FROM {{ schema }}.songplays)
     AND NOT EXISTS (SELECT 1 FROM {{ schema }}.time) THEN 1 ELSE 0 END
