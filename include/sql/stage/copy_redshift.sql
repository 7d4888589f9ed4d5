{#- Redshift COPY takes no bind parameters: every literal here was validated and quoted by the
    operator, and the credentials are masked wherever the statement is logged. -#}
COPY sparkify_batch ({{ columns | join(', ') }})
FROM '{{ manifest_url }}'
CREDENTIALS '{{ credentials }}'
FORMAT AS JSON '{{ json_format }}'
MANIFEST
REGION '{{ region }}'
COMPUPDATE OFF STATUPDATE OFF;
