"""The warehouse schema, versioned: ordered migration files and a version table.

Each file ``include/sql/migrations/NNNN_<name>.sql`` is one migration, numbered from 0001 without
gaps and rendered per dialect like every other SQL file. ``schema_migrations`` in the warehouse
records which versions were applied, when, and a checksum of the statements each one ran.
:func:`migrate` creates that table in a transaction of its own and commits it, then, in a second
transaction, LOCKs it before reading the applied versions and applies the missing ones in order:
a failing migration leaves the warehouse at the version it had, and two migrators at once apply
each migration once. The order matters on Redshift, whose transaction takes its snapshot at its
first CREATE TABLE, SELECT or DML and not at LOCK: a migrator that created the table or read the
versions before its LOCK was granted would see the versions of before the other migrator's commit
and apply them again. PostgreSQL runs the migrating transaction at REPEATABLE READ, which takes
its snapshot the same way, so the tests here would catch such a reordering.

0001 is the schema as the project first shipped it, written with ``IF NOT EXISTS``, so a
warehouse created before versioning existed is taken up as version 1 unchanged. Once applied, a
migration is never edited (its checksum would no longer match, and :func:`migrate` says so): a
change to the schema is the next file. Statements must be valid inside a transaction on Redshift
(CREATE TABLE, ADD COLUMN, CREATE TABLE … AS and a rename: yes; ALTER COLUMN … TYPE: no).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from sparkify import settings, warehouse
from sparkify.errors import PermanentError

log = logging.getLogger(__name__)

FOLDER = "migrations"
VERSION_TABLE = "schema_migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(PermanentError):
    """The migration files or the warehouse's recorded versions are not what they must be."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str

    @property
    def template(self) -> str:
        return f"{FOLDER}/{self.version:04d}_{self.name}.sql"

    def statements(self, dialect: str, schema: str) -> list[str]:
        return warehouse.split(warehouse.render(self.template, dialect=dialect, schema=schema))

    def checksum(self, dialect: str, schema: str) -> str:
        """MD5 of the statements the migration runs (comments and layout do not count)."""
        return hashlib.md5("\n;\n".join(self.statements(dialect, schema)).encode("utf-8")).hexdigest()


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration file, in order; their numbers must run 1, 2, 3… without a gap or a twin."""
    found = []
    for path in sorted((settings.SQL_DIR / FOLDER).glob("*.sql")):
        match = _FILE.fullmatch(path.name)
        if not match:
            raise MigrationError(f"{path}: a migration file is named NNNN_<lower_case_name>.sql")
        found.append(Migration(int(match.group(1)), match.group(2)))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{settings.SQL_DIR / migration.template}: expected migration {expected:04d} here; "
                "migrations are numbered from 0001 without gaps or duplicates"
            )
    return tuple(found)


def head() -> int:
    """The version this code expects the warehouse to be at."""
    return migrations()[-1].version


def applied(session: warehouse.Session, schema: str) -> dict[int, str]:
    """The versions recorded in the warehouse and their checksums ({} before the first migrate)."""
    settings.validate_identifier(schema, "schema")
    exists = session.fetch_file("schema/version_table_exists.sql", {"schema": schema})
    if not exists or not exists[0][0]:
        return {}
    return dict(session.fetch_file("schema/applied.sql", schema=schema))


def migrate(session: warehouse.Session, schema: str, target: int | None = None) -> list[Migration]:
    """Bring ``schema`` to version ``target`` (default: the latest) through ``session``.

    First commits ``session``'s transaction with the version table created (and whatever the
    caller ran before), then applies the missing migrations in a new transaction, which the caller
    commits as before. Returns the migrations applied now (none when the warehouse was already there).
    """
    settings.validate_identifier(schema, "schema")
    available = migrations()
    target = head() if target is None else target
    if not 1 <= target <= head():
        raise MigrationError(f"target={target}: choose a version from 1 to {head()}")
    _create_version_table(session, schema)
    session.run_file("schema/lock.sql", schema=schema)  # the driver's BEGIN, then LOCK: no snapshot yet
    done = dict(session.fetch_file("schema/applied.sql", schema=schema))  # the snapshot, once locked
    unknown = sorted(set(done) - {m.version for m in available})
    if unknown:
        raise MigrationError(
            f"{schema}.{VERSION_TABLE} records version(s) {unknown} that this code does not have "
            f"(it knows 1 to {head()}): the warehouse was migrated by a newer release"
        )
    now_applied = []
    for migration in available[:target]:
        checksum = migration.checksum(session.dialect, schema)
        if migration.version in done:
            if done[migration.version] != checksum:
                raise MigrationError(
                    f"{settings.SQL_DIR / migration.template}: migration {migration.version} was applied "
                    f"with checksum {done[migration.version]}, but the file now gives {checksum}; an applied "
                    "migration is never edited: put the change in a new migration file"
                )
            continue
        log.info("Applying migration %04d_%s to schema %s", migration.version, migration.name, schema)
        for statement in migration.statements(session.dialect, schema):
            session.execute(statement)
        session.run_file(
            "schema/record.sql",
            {"version": migration.version, "name": migration.name, "checksum": checksum,
             "applied_at": warehouse.naive_utc(datetime.now(UTC))},
            schema=schema,
        )
        now_applied.append(migration)
    return now_applied


def _create_version_table(session: warehouse.Session, schema: str) -> None:
    """Create the schema and the version table if missing, and commit.

    Two migrators creating them at the same moment can collide (PostgreSQL refuses the second with
    a unique violation in its catalog once the first commits): the loser rolls back and tries once
    more, and then finds them made. Any other failure fails the second try as well, and is raised.
    """
    try:
        session.run_file("schema/version_table.sql", schema=schema)
        session.connection.commit()
    except Exception as err:  # the driver's own error class: psycopg, psycopg2 or redshift_connector
        session.connection.rollback()
        log.info("Creating %s.%s failed (%s: %s); trying once more, as another migrator may have "
                 "created it at the same moment", schema, VERSION_TABLE, type(err).__name__, err)
        session.run_file("schema/version_table.sql", schema=schema)
        session.connection.commit()


def version(session: warehouse.Session, schema: str) -> int:
    """The warehouse's version: 0 when it has never been migrated."""
    return max(applied(session, schema), default=0)
