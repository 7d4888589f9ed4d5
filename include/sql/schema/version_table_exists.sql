{#- Whether the version table exists, without touching it (information_schema: both dialects). -#}
SELECT COUNT(*) FROM information_schema.tables
WHERE table_schema = %(schema)s AND table_name = 'schema_migrations';
