COPY sparkify_batch ({{ columns | join(', ') }}) FROM STDIN WITH (FORMAT csv)
