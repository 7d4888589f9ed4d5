{#- The tables of the schema the connection's user can see (information_schema: both dialects). -#}
SELECT CAST(table_name AS VARCHAR(128)) FROM information_schema.tables
WHERE table_schema = %(schema)s AND table_type = 'BASE TABLE'
ORDER BY 1;
