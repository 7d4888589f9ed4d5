SELECT version, checksum FROM {{ schema }}.schema_migrations ORDER BY version;
