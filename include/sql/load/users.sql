{%- from 'load/personal_data.jinja' import personal with context -%}
{%- from 'text.jinja' import compared with context -%}
{#- Each user seen in the interval (any page, non-empty userId), with the attributes of their
    latest event by ts. A user already stored from a later event is left alone, so loading an
    older interval after a newer one never rolls a level back. -#}
SELECT latest.user_id, latest.first_name, latest.last_name, latest.gender, latest.level, latest.last_event_ts
FROM (
    SELECT
        CAST(e.userid AS INTEGER) AS user_id,
        {{ personal('e.firstname') }} AS first_name,
        {{ personal('e.lastname') }}  AS last_name,
        e.gender                  AS gender,
        e.level                   AS level,
        e.ts                      AS last_event_ts,
        ROW_NUMBER() OVER (
            PARTITION BY CAST(e.userid AS INTEGER)
            ORDER BY e.ts DESC, e.sessionid DESC, e.iteminsession DESC, e.level, e.firstname, e.lastname, e.gender
        ) AS pick
    FROM {{ schema }}.staging_events e
    WHERE e.userid IS NOT NULL AND {{ compared('e.userid') }} <> ''
      AND e.ts >= %(interval_start_ms)s AND e.ts < %(interval_end_ms)s
) AS latest
LEFT JOIN {{ schema }}.users u ON u.user_id = latest.user_id
WHERE latest.pick = 1
  AND (u.user_id IS NULL OR u.last_event_ts <= latest.last_event_ts)
