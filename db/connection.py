"""One PostgreSQL connection per thread, reused across Lambda invocations.

A Lambda container handles one request at a time, so a thread-local connection means exactly
one connection per container. After a quiet spell the connection is pinged before use, so a
connection the server dropped while the container was frozen is replaced transparently.

In the cloud the credentials come from the RDS-managed secret, which RDS rotates (every 7 days
by default). Open connections survive a rotation, new ones need the new password: the DSN is
cached for at most `DB_SECRET_MAX_AGE_SECONDS`, and a connect refused for its password re-reads
the secret and tries once more, so a rotation costs one refused connect, not a restart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable

import psycopg2
import psycopg2.extensions

from db.secrets import read_secret, reset_client

IDLE_PING_SECONDS = 30.0
DEFAULT_SECRET_MAX_AGE_SECONDS = 900.0
log = logging.getLogger(__name__)
_local = threading.local()
_dsn_lock = threading.Lock()
_dsn: tuple[str, float] | None = None  # (DSN, time.monotonic() when it was read)


def database_url() -> str:
    """`DATABASE_URL`, or a DSN built from the RDS-managed secret in the cloud.

    Cached, but only for `DB_SECRET_MAX_AGE_SECONDS`: one Secrets Manager call per process
    per interval, and no process keeps connecting with a password long after it rotated.
    When that re-read fails (Secrets Manager unreachable), the cached DSN is kept and the
    next connect tries again: an expired cache must not turn a working login into an outage."""
    global _dsn
    max_age = float(os.environ.get("DB_SECRET_MAX_AGE_SECONDS", DEFAULT_SECRET_MAX_AGE_SECONDS))
    with _dsn_lock:
        now = time.monotonic()
        if _dsn is None:
            _dsn = (_read_dsn(), now)
        elif now - _dsn[1] >= max_age:
            try:
                _dsn = (_read_dsn(), now)
            except Exception:
                log.warning("could not re-read the database secret; using the cached one",
                            exc_info=True)  # fmt: skip
        return _dsn[0]


def _refreshed_dsn(rejected: str) -> str:
    """The DSN to retry with after `rejected` was refused: re-read, unless another thread has
    already replaced it (a rotation then costs one Secrets Manager call, not one per thread)."""
    global _dsn
    with _dsn_lock:
        if _dsn is None or _dsn[0] == rejected:
            _dsn = (_read_dsn(), time.monotonic())
        return _dsn[0]


def _read_dsn() -> str:
    return os.environ.get("DATABASE_URL") or _dsn_from_secret()


def _dsn_from_secret() -> str:
    """A key/value DSN (libpq quotes the values), so any password and a socket directory as
    `DB_HOST` work."""
    secret_arn = os.environ.get("DB_SECRET_ARN")
    if not secret_arn:
        raise RuntimeError("set DATABASE_URL (or DB_SECRET_ARN with DB_HOST and DB_NAME)")
    secret = read_secret(secret_arn)
    return psycopg2.extensions.make_dsn(
        host=os.environ["DB_HOST"],
        port=os.environ.get("DB_PORT", "5432"),
        dbname=os.environ.get("DB_NAME", "orderflow"),
        user=secret["username"],
        password=secret["password"],
        sslmode="require",
    )


def reset_dsn() -> None:
    """Forget the cached DSN, the Secrets Manager client and this thread's connection (tests
    switch databases and endpoints)."""
    global _dsn
    with _dsn_lock:
        _dsn = None
    reset_client()
    discard_connection()


def _is_authentication_failure(error: psycopg2.Error) -> bool:
    """A connect refused for its password (SQLSTATE 28P01). psycopg2 raises a bare
    OperationalError at connect time, without the server's SQLSTATE (`pgcode` is None), so
    the server's message is all there is to go by."""
    return "password authentication failed" in str(error)


def open_connection() -> psycopg2.extensions.connection:
    """A new connection with the current credentials.

    When the server refuses the password, the secret has probably rotated since it was read:
    read it again and try once more. A second refusal is raised, so callers fail (503, a
    retried message) instead of looping while a rotation is half done."""
    dsn = database_url()
    try:
        return _open(dsn)
    except psycopg2.OperationalError as error:
        if not _is_authentication_failure(error):
            raise
        log.warning("the database refused the cached password; reading the secret again")
    return _open(_refreshed_dsn(dsn))


def connect_with_backoff(
    seconds_left: Callable[[], float],
    reserve_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    first_delay: float = 1.0,
    max_delay: float = 16.0,
) -> psycopg2.extensions.connection:
    """`open_connection`, retried with exponential backoff while the database is unreachable.

    For work that runs once and may start before the database accepts connections (the
    migration during `pulumi up`, while RDS Proxy is still registering its targets). A retry
    starts only if it can end, connect timeout included, `reserve_seconds` before
    `seconds_left()` runs out, so the caller keeps that time for its own work and the last
    error is raised before the caller's deadline, not cut off by it."""
    attempt_seconds = _connect_timeout()
    delay = first_delay
    attempt = 1
    while True:
        try:
            return open_connection()
        except psycopg2.OperationalError as error:
            if seconds_left() - reserve_seconds < delay + attempt_seconds:
                raise
            log.warning(
                "database not reachable (attempt %d), retrying in %.0f s: %s",
                attempt, delay, " ".join(str(error).split()),
            )
        sleep(delay)
        delay = min(delay * 2, max_delay)
        attempt += 1


def _connect_timeout() -> int:
    return int(os.environ.get("DB_CONNECT_TIMEOUT", "5"))


def _open(dsn: str) -> psycopg2.extensions.connection:
    return psycopg2.connect(
        dsn,
        connect_timeout=_connect_timeout(),
        application_name=os.environ.get("DB_APPLICATION_NAME", "orderflow"),
        keepalives=1,
        keepalives_idle=30,
    )


def _connect() -> psycopg2.extensions.connection:
    conn = open_connection()
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
