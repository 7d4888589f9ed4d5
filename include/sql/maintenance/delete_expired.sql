{#- Retention, second half: remove the expired objects' staged rows and manifest entries, in the
    transaction that counted them. A later run of one of their hours stages the object again. -#}
DELETE FROM {{ schema }}.staging_events USING sparkify_expired x
WHERE {{ schema }}.staging_events.source_key = x.s3_key;

DELETE FROM {{ schema }}.load_manifest_hours USING sparkify_expired x
WHERE {{ schema }}.load_manifest_hours.s3_key = x.s3_key;

DELETE FROM {{ schema }}.load_manifest USING sparkify_expired x
WHERE {{ schema }}.load_manifest.s3_key = x.s3_key;

DROP TABLE sparkify_expired;
