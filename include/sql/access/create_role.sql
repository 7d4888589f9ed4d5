{#- A role to grant privileges to and users to (PostgreSQL: NOLOGIN by default; Redshift: RBAC role). -#}
CREATE ROLE {{ role }};
