-- What is already staged for this staging table: key, ETag and size of each object.
SELECT s3_key, etag, size_bytes FROM {{ schema }}.load_manifest WHERE source = %(source)s;
