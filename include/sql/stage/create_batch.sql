-- Per-run scratch tables, private to this transaction's session: the rows read from S3 and the
-- objects they came from. Nothing touches the shared staging table until they are complete.
CREATE TEMPORARY TABLE sparkify_batch (LIKE {{ schema }}.{{ table }});
CREATE TEMPORARY TABLE sparkify_batch_objects (
    s3_key      VARCHAR(1024),
    etag        VARCHAR(256),
    size_bytes  BIGINT,
    row_count   BIGINT
);
