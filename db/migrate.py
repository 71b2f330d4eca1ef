"""Apply versioned plain-SQL migrations exactly once, safely from concurrent processes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import psycopg2
import psycopg2.extensions

from db.connection import connect_with_backoff

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_ID = 7_201_994_001  # pg_advisory_lock key shared by every migrator of this schema
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Kept from the deploy-time function's timeout for the migrations once connected.
MIGRATION_RESERVE_SECONDS = 60.0


def available_migrations() -> list[tuple[int, Path]]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name must look like 0001_name.sql: {path.name}")
        found.append((int(match.group(1)), path))
    return found


def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; returns the file names applied (empty when up to date)."""
    return _apply(psycopg2.connect(dsn))


def migrate_when_reachable(
    seconds_left: Callable[[], float], sleep: Callable[[float], None] = time.sleep
) -> list[str]:
    """The deploy-time migration (the `migrate` function that `pulumi up` invokes).

    It may run before the database accepts connections: RDS Proxy registers its targets
    asynchronously, and a failed invocation fails the whole `pulumi up`. So it connects with
    backoff while `seconds_left()` (the function's remaining time) allows, keeping
    MIGRATION_RESERVE_SECONDS for the migrations. The connection re-reads a rotated secret
    like every other (see `db.connection.open_connection`)."""
    return _apply(connect_with_backoff(seconds_left, MIGRATION_RESERVE_SECONDS, sleep))


def _apply(conn: psycopg2.extensions.connection) -> list[str]:
    """Apply pending migrations on `conn` under the advisory lock, then close it."""
    applied_now: list[str] = []
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
            try:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
                cur.execute("SELECT version FROM schema_migrations")
                done = {row[0] for row in cur.fetchall()}
                for version, path in available_migrations():
                    if version in done:
                        continue
                    conn.autocommit = False
                    cur.execute(path.read_text())
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (version, path.name),
                    )
                    conn.commit()
                    conn.autocommit = True
                    applied_now.append(path.name)
            finally:
                conn.rollback()
                conn.autocommit = True
                cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    finally:
        conn.close()
    return applied_now
