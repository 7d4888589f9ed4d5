{#- The first statements of the migrating transaction, before it reads anything: LOCK (valid on
    Redshift and PostgreSQL, unlike PostgreSQL's advisory locks; ACCESS EXCLUSIVE on both) holds
    every other migrator until this one commits, and the SELECT of the applied versions that
    follows takes the transaction's snapshot only once the lock is granted. PostgreSQL runs the
    transaction at REPEATABLE READ, whose snapshot is likewise taken at the first SELECT, DML or
    CREATE and not at LOCK: the stand-in reads as Redshift does, so a statement moved before the
    LOCK would re-apply migrations here too. -#}
{% if dialect == 'postgres' %}
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
{% endif %}
LOCK TABLE {{ schema }}.schema_migrations;
