{%- from 'load/personal_data.jinja' import personal with context -%}
{%- from 'text.jinja' import compared with context -%}
{#- One songplay per NextSong event of the run's interval. songplay_id is an MD5 of the event's
    session, item in session and ts, so a rerun gives the same ids. The song is the one whose
    title and artist name equal the event's (as Redshift compares VARCHAR:
    trailing blanks aside, text.jinja) and whose duration is within 1 ms of the
    event's length; when several songs match, the smallest song_id wins. -#}
SELECT songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location, user_agent
FROM (
    SELECT
        MD5(CAST(e.sessionid AS VARCHAR(16)) || '-' || CAST(e.iteminsession AS VARCHAR(16)) || '-'
            || CAST(e.ts AS VARCHAR(24)))                                AS songplay_id,
        TIMESTAMP 'epoch' + (e.ts / 1000) * INTERVAL '1 second'
            + MOD(e.ts, 1000) * INTERVAL '1 millisecond'                 AS start_time,
        CAST(NULLIF({{ compared('e.userid') }}, '') AS INTEGER)                            AS user_id,
        e.level                                                          AS level,
        s.song_id                                                        AS song_id,
        s.artist_id                                                      AS artist_id,
        e.sessionid                                                      AS session_id,
        {{ personal('e.location') }}                                     AS location,
        {{ personal('e.useragent') }}                                    AS user_agent,
        ROW_NUMBER() OVER (
            PARTITION BY e.sessionid, e.iteminsession, e.ts
            ORDER BY s.song_id, e.userid, e.level, e.location, e.useragent
        )                                                                AS pick
    FROM {{ schema }}.staging_events e
    LEFT JOIN {{ schema }}.staging_songs s
        ON  {{ compared('s.title') }} = {{ compared('e.song') }}
        AND {{ compared('s.artist_name') }} = {{ compared('e.artist') }}
        AND ABS(s.duration - e.length) <= 0.001000001  -- 1 ms, with room for binary rounding
    WHERE {{ compared('e.page') }} = 'NextSong'
      AND e.ts >= %(interval_start_ms)s AND e.ts < %(interval_end_ms)s
) AS plays
WHERE pick = 1
