{%- from 'text.jinja' import compared with context -%}
-- Per hour, what each staged event object held when it was read: the source side of the
-- songplays reconciliation check. Counted from the batch, before it merges into staging.
-- Grouped by the selected expressions themselves, as Redshift requires.
DELETE FROM {{ schema }}.load_manifest_hours
USING sparkify_batch_objects o
WHERE {{ schema }}.load_manifest_hours.s3_key = o.s3_key;

INSERT INTO {{ schema }}.load_manifest_hours (s3_key, hour_start, events, next_song_events)
SELECT source_key,
       TIMESTAMP 'epoch' + (ts / 3600000) * INTERVAL '1 hour',
       COUNT(*),
       SUM(CASE WHEN {{ compared('page') }} = 'NextSong' THEN 1 ELSE 0 END)
FROM (SELECT DISTINCT * FROM sparkify_batch) AS b
WHERE ts IS NOT NULL
GROUP BY source_key, TIMESTAMP 'epoch' + (ts / 3600000) * INTERVAL '1 hour';
