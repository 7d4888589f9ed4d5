-- Column names, types and widths of a staging table, in order (PostgreSQL path only).
SELECT column_name, data_type, character_maximum_length
FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = %(table)s
ORDER BY ordinal_position;
