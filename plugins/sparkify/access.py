"""Who may read and write the warehouse: an analysts' role and the pipeline's own role.

    python -m sparkify.access grant --conn-id redshift [--schema public]
        [--analyst-role sparkify_analyst] [--loader-role sparkify_loader]

creates the roles if they are missing (Redshift: RBAC roles; PostgreSQL: NOLOGIN roles) and grants:

* ``sparkify_analyst``: SELECT on the star tables and ``quality_results``, and nothing else
  (staging, the load manifest and the other bookkeeping stay private; no writes);
* ``sparkify_loader``: SELECT, INSERT, UPDATE, DELETE on every table of the schema, for the
  pipeline's connection user (the tables' owner, who runs the migrations and VACUUM, has these
  already).

Idempotent: run it again after a migration adds a table. People get access by membership:
``GRANT ROLE sparkify_analyst TO alice`` on Redshift, ``GRANT sparkify_analyst TO alice`` on
PostgreSQL. The local run and the ``sparkify_setup`` DAG call it.
"""

from __future__ import annotations

import argparse

from sparkify import settings
from sparkify.tables import ALL_TABLES, STAR_TABLES
from sparkify.warehouse import Session, Warehouse

ANALYST_ROLE = "sparkify_analyst"
LOADER_ROLE = "sparkify_loader"
# What analysts may read: the star schema and the data-quality history.
ANALYST_TABLES = (*STAR_TABLES, "quality_results")
PRIVATE_TABLES = tuple(t for t in ALL_TABLES if t not in ANALYST_TABLES)


def ensure_role(session: Session, role: str) -> bool:
    """Create ``role`` unless it exists; True when it was created."""
    settings.validate_identifier(role, "role")
    found = session.fetch_file("access/role_exists.sql", {"role": role})
    if found and found[0][0]:
        return False
    session.run_file("access/create_role.sql", role=role)
    return True


def grant(session: Session, schema: str, analyst_role: str = ANALYST_ROLE,
          loader_role: str = LOADER_ROLE) -> list[str]:
    """Create the roles if missing and (re)grant their privileges on ``schema``; the roles created."""
    settings.validate_identifier(schema, "schema")
    created = [role for role in (analyst_role, loader_role) if ensure_role(session, role)]
    session.run_file("access/grant_analyst.sql", schema=schema, role=analyst_role,
                     readable=ANALYST_TABLES, private=PRIVATE_TABLES)
    session.run_file("access/grant_loader.sql", schema=schema, role=loader_role, tables=ALL_TABLES)
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkify.access", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["grant"])
    parser.add_argument("--conn-id", default=settings.DEFAULTS.redshift_conn_id)
    parser.add_argument("--schema", default=settings.DEFAULTS.schema)
    parser.add_argument("--analyst-role", default=ANALYST_ROLE)
    parser.add_argument("--loader-role", default=LOADER_ROLE)
    args = parser.parse_args(argv)
    wh = Warehouse(args.conn_id)
    with wh.transaction() as session:
        created = grant(session, args.schema, args.analyst_role, args.loader_role)
    print(f"roles {args.analyst_role} (read: {', '.join(ANALYST_TABLES)}) and {args.loader_role} "
          f"(read and write: every table) granted on schema {args.schema}"
          + (f"; created {', '.join(created)}" if created else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
