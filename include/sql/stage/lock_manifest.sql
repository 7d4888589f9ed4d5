{#- Serialises staging across concurrent runs: the manifest is read and written by one run at a
    time, so two runs never stage the same object twice. LOCK is ACCESS EXCLUSIVE on both
    warehouses (Redshift has no other mode; PostgreSQL takes the same, so the tests see
    production's locks). With `with_refresh` (a staging that may note refreshes: staging_events),
    load_refresh is taken first, in the one lock order of docs/backfills.md, so a staging never
    holds the manifest while it waits for a load. -#}
LOCK TABLE {% if with_refresh | default(false) %}{{ schema }}.load_refresh, {% endif %}{{ schema }}.load_manifest;
