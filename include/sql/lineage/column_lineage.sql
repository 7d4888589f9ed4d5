{#- Never run: what the OpenLineage provider's SQL parser reads for a load's column lineage
    (sparkify.lineage). The load's own statements (load/modes/<mode>.sql) insert through a merge
    table or after a DELETE; this is the same SELECT straight into the table, so the parser sees
    which staging columns feed which of its columns. -#}
INSERT INTO {{ schema }}.{{ table }} ({{ columns | join(', ') }})
{% include select %}
