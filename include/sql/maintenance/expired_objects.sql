{#- Retention, first half: which staged event objects are older than the bound (by when they were
    staged), and how many rows each table holds for them. Runs after the manifest lock. -#}
CREATE TEMPORARY TABLE sparkify_expired AS
SELECT s3_key FROM {{ schema }}.load_manifest
WHERE source = %(source)s AND staged_at < %(older_than)s;

SELECT 'staging_events' AS table_name, COUNT(*) FROM {{ schema }}.staging_events e
    JOIN sparkify_expired x ON e.source_key = x.s3_key
UNION ALL
SELECT 'load_manifest_hours', COUNT(*) FROM {{ schema }}.load_manifest_hours h
    JOIN sparkify_expired x ON h.s3_key = x.s3_key
UNION ALL
SELECT 'load_manifest', COUNT(*) FROM sparkify_expired;
