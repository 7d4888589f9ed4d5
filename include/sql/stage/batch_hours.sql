{#- The first and last hour of events of each object staged in this batch (load_manifest_hours,
    just recorded): which days a changed object's loads must bring up to date. -#}
SELECT h.s3_key, MIN(h.hour_start), MAX(h.hour_start)
FROM {{ schema }}.load_manifest_hours h
JOIN sparkify_batch_objects o ON h.s3_key = o.s3_key
GROUP BY h.s3_key;
