-- What this run found in S3 (the prefix's listing, or the run's own objects and the earlier days'),
-- private to the staging transaction's session: compared with the manifest in the warehouse, not in
-- the task's memory (the task holds one page and one chunk of the result at a time). late: an
-- earlier day's file, staged again only if it was staged before and changed.
CREATE TEMPORARY TABLE sparkify_listing (
    s3_key      VARCHAR(1024),
    etag        VARCHAR(256),
    size_bytes  BIGINT,
    late        BOOLEAN
);
