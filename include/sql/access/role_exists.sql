{% if dialect == 'redshift' %}
SELECT COUNT(*) FROM svv_roles WHERE role_name = %(role)s;
{% else %}
SELECT COUNT(*) FROM pg_roles WHERE rolname = %(role)s;
{% endif %}
