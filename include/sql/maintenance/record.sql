INSERT INTO {{ schema }}.maintenance_log (run_id, task, table_name, action, rows_affected, logged_at)
VALUES (%(run_id)s, %(task)s, %(table_name)s, %(action)s, %(rows_affected)s, %(logged_at)s);
