"""One PostgreSQL connection per thread, reused across Lambda invocations.

A Lambda container handles one request at a time, so a thread-local connection means exactly
one connection per container. After a quiet spell the connection is pinged before use, so a
connection the server dropped while the container was frozen is replaced transparently.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import threading
import time
from urllib.parse import quote

import psycopg2
import psycopg2.extensions

IDLE_PING_SECONDS = 30.0
_local = threading.local()
_dsn_lock = threading.Lock()
_dsn: str | None = None


def database_url() -> str:
    """`DATABASE_URL`, or a DSN built from the RDS-managed secret in the cloud."""
    global _dsn
    with _dsn_lock:
        if _dsn is None:
            _dsn = os.environ.get("DATABASE_URL") or _dsn_from_secret()
        return _dsn


def _dsn_from_secret() -> str:
    secret_arn = os.environ.get("DB_SECRET_ARN")
    if not secret_arn:
        raise RuntimeError("set DATABASE_URL (or DB_SECRET_ARN with DB_HOST and DB_NAME)")
    from processor.aws import client

    secret = json.loads(
        client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    )
    user = quote(secret["username"], safe="")
    password = quote(secret["password"], safe="")
    host = os.environ["DB_HOST"]
    port = os.environ.get("DB_PORT", "5432")
    name = os.environ.get("DB_NAME", "orderflow")
    return f"postgresql://{user}:{password}@{host}:{port}/{name}?sslmode=require"


def reset_dsn() -> None:
    """Forget the cached DSN and this thread's connection (tests switch databases)."""
    global _dsn
    with _dsn_lock:
        _dsn = None
    discard_connection()


def _connect() -> psycopg2.extensions.connection:
    conn = psycopg2.connect(
        database_url(),
        connect_timeout=int(os.environ.get("DB_CONNECT_TIMEOUT", "5")),
        application_name=os.environ.get("DB_APPLICATION_NAME", "orderflow"),
        keepalives=1,
        keepalives_idle=30,
    )
    conn.autocommit = False
    return conn


def _healthy(conn: psycopg2.extensions.connection, idle_for: float) -> bool:
    """Cheap check first, without a round trip: an idle connection's socket has nothing to
    read unless the server closed the session (restart, failover, idle kill). A real ping
    only after a quiet spell, for connections that died silently."""
    if conn.closed:
        return False
    poller = select.poll()  # not select.select: that fails for descriptors >= 1024
    poller.register(conn.fileno(), select.POLLIN)
    if poller.poll(0):
        return False
    if idle_for < IDLE_PING_SECONDS:
        return True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.rollback()
        return True
    except psycopg2.Error:
        return False


def get_connection() -> psycopg2.extensions.connection:
    """This thread's connection, opened or re-opened as needed."""
    conn = getattr(_local, "conn", None)
    now = time.monotonic()
    if conn is None or not _healthy(conn, now - getattr(_local, "last_used", now)):
        discard_connection()
        conn = _connect()
        _local.conn = conn
        _local.prepared = set()
    _local.last_used = now
    return conn


def prepared_statements() -> set[str]:
    """Names of the statements prepared on this thread's current connection (a new
    connection starts with none)."""
    found: set[str] | None = getattr(_local, "prepared", None)
    if found is None:
        found = _local.prepared = set()
    return found


def discard_connection() -> None:
    """Close this thread's connection; the next `get_connection` opens a fresh one."""
    conn = getattr(_local, "conn", None)
    _local.conn = None
    if conn is not None and not conn.closed:
        with contextlib.suppress(psycopg2.Error):
            conn.close()
