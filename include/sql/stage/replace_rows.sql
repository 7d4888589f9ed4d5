{#- Replace what the staging table holds for the objects in sparkify_batch_objects, then record
    them in the manifest. Runs inside the staging transaction, after the manifest lock. -#}
{% if source_key_column %}
DELETE FROM {{ schema }}.{{ table }}
USING sparkify_batch_objects o
WHERE {{ schema }}.{{ table }}.{{ source_key_column }} = o.s3_key;
{% endif %}
{% if dedupe_key %}
DELETE FROM {{ schema }}.{{ table }}
USING sparkify_batch b
WHERE {{ schema }}.{{ table }}.{{ dedupe_key }} = b.{{ dedupe_key }};
{% endif %}
INSERT INTO {{ schema }}.{{ table }} SELECT DISTINCT * FROM sparkify_batch;

DELETE FROM {{ schema }}.load_manifest
USING sparkify_batch_objects o
WHERE {{ schema }}.load_manifest.s3_key = o.s3_key;

INSERT INTO {{ schema }}.load_manifest (s3_key, source, etag, size_bytes, row_count, staged_at, run_id)
SELECT s3_key, %(source)s, etag, size_bytes, row_count, %(staged_at)s, %(run_id)s FROM sparkify_batch_objects;
