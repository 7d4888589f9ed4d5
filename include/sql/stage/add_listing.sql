INSERT INTO sparkify_listing (s3_key, etag, size_bytes, late) VALUES
{%- for i in range(count) %}
    (%(k{{ i }})s, %(e{{ i }})s, %(s{{ i }})s, %(l{{ i }})s){{ "," if not loop.last }}
{%- endfor %};
