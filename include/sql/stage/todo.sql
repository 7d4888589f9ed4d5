{#- The next {{ limit }} objects to stage, in key order after %(after)s: listed objects the manifest
    does not hold for this staging table, or holds under another ETag or size; an earlier day's
    file (late) only when it was staged before. The last column is 1 when the object was staged
    before (it changed). Read chunk by chunk, so the task never holds the whole list. -#}
SELECT l.s3_key, l.etag, l.size_bytes, CASE WHEN m.s3_key IS NULL THEN 0 ELSE 1 END
FROM sparkify_listing l
LEFT JOIN {{ schema }}.load_manifest m ON m.s3_key = l.s3_key AND m.source = %(source)s
WHERE (m.s3_key IS NULL OR m.etag <> l.etag OR m.size_bytes <> l.size_bytes)
  AND (m.s3_key IS NOT NULL OR NOT l.late)
  AND l.s3_key > %(after)s
ORDER BY l.s3_key
LIMIT {{ limit }};
