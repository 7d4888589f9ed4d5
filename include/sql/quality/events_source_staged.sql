-- 1 when the run's daily event file is recorded in the load manifest (it existed and was staged).
SELECT COUNT(*) FROM {{ schema }}.load_manifest WHERE s3_key = %(events_key)s
