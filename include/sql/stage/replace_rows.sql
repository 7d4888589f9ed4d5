{#- Replace what the staging table holds for the objects in sparkify_batch_objects, then record
    them in the manifest. Runs inside the staging transaction, after the manifest lock. The bound
    values are CAST to a type, as Redshift's driver sends them untyped; the text ones to Redshift's
    widest VARCHAR, which truncates nothing: a value too long for its column is still refused by
    the INSERT, on both warehouses, as it was before the CAST. -#}
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
SELECT s3_key, CAST(%(source)s AS VARCHAR(65535)), etag, size_bytes, row_count, CAST(%(staged_at)s AS TIMESTAMP),
       CAST(%(run_id)s AS VARCHAR(65535))
FROM sparkify_batch_objects;
