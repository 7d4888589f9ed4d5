INSERT INTO sparkify_batch_objects (s3_key, etag, size_bytes, row_count) VALUES
{%- for i in range(count) %}
    (%(k{{ i }})s, %(e{{ i }})s, %(s{{ i }})s, %(r{{ i }})s){{ "," if not loop.last }}
{%- endfor %};
