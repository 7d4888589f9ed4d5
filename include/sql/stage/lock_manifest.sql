-- Serialises staging across concurrent runs: the manifest is read and written by one run at a
-- time, so two runs never stage the same object twice. LOCK is valid on Redshift and PostgreSQL;
-- on PostgreSQL a mode that still lets readers (the data-quality checks) in.
LOCK TABLE {{ schema }}.load_manifest{% if dialect == 'postgres' %} IN SHARE ROW EXCLUSIVE MODE{% endif %};
