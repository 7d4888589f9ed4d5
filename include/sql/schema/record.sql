INSERT INTO {{ schema }}.schema_migrations (version, name, checksum, applied_at)
VALUES (%(version)s, %(name)s, %(checksum)s, %(applied_at)s);
