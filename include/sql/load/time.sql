{#- One row per distinct songplays.start_time of the interval. weekday: 0 = Sunday … 6 =
    Saturday (EXTRACT(dow), as Redshift's DATE_PART(dow, …)); week: ISO week. -#}
SELECT DISTINCT
    start_time,
    CAST(EXTRACT(hour FROM start_time) AS INTEGER),
    CAST(EXTRACT(day FROM start_time) AS INTEGER),
    CAST(EXTRACT(week FROM start_time) AS INTEGER),
    CAST(EXTRACT(month FROM start_time) AS INTEGER),
    CAST(EXTRACT(year FROM start_time) AS INTEGER),
    CAST(EXTRACT(dow FROM start_time) AS INTEGER)
FROM {{ schema }}.songplays
WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s
