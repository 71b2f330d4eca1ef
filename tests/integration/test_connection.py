"""Lambda-style connection handling: one per container (thread), reused, re-opened."""

from __future__ import annotations

import threading

import psycopg2
import pytest

from db.connection import discard_connection, get_connection
from db.errors import DatabaseError, DatabaseUnavailable
from db.uow import UnitOfWork
from tests.helpers import count, wait_until


def _backend_pid() -> int:
    with UnitOfWork() as uow:
        uow._cursor.execute("SELECT pg_backend_pid()")
        return uow._cursor.fetchone()[0]


def test_the_connection_is_reused_across_units_of_work(db):
    assert _backend_pid() == _backend_pid()


def test_a_connection_killed_by_the_server_is_replaced_transparently(db):
    pid = _backend_pid()
    with db.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits for the exit
    with UnitOfWork() as uow:
        uow._cursor.execute("SELECT 1")
        assert uow._cursor.fetchone() == (1,)
    assert _backend_pid() != pid


def test_each_thread_has_exactly_one_connection(db, database_url):
    pids: list[int] = []
    barrier = threading.Barrier(5)

    def container() -> None:
        barrier.wait()
        for _ in range(3):
            pids.append(_backend_pid())
        get_connection().close()

    threads = [threading.Thread(target=container) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(pids) == 15
    assert len(set(pids)) == 5
    # A backend exits shortly after its client closes, not at once.
    wait_until(
        lambda: count(db, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", pids) == 0,
        what="the closed connections' backends to exit",
    )


def test_the_create_statement_is_prepared_once_per_connection_and_again_after_a_reconnect(
    system, db
):
    from processor.orders import service as order_service
    from tests.helpers import order_request

    for _ in range(3):
        order_service.create_order(order_request())
    assert "orderflow_create_order" in get_connection_prepared()
    pid = _backend_pid()
    with db.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    order_service.create_order(order_request())
    assert _backend_pid() != pid
    assert "orderflow_create_order" in get_connection_prepared()
    assert count(db, "SELECT count(*) FROM orders") == 4


def test_prepared_statements_can_be_switched_off_for_rds_proxy(system, db, monkeypatch):
    from processor.orders import service as order_service
    from tests.helpers import order_request

    monkeypatch.setenv("DB_PREPARED_STATEMENTS", "off")
    discard_connection()
    order_service.create_order(order_request())
    assert "orderflow_create_order" not in get_connection_prepared()
    assert count(db, "SELECT count(*) FROM orders") == 1


def get_connection_prepared() -> set[str]:
    """Statements the server really has prepared on this thread's connection."""
    with UnitOfWork() as uow:
        uow._cursor.execute("SELECT name FROM pg_prepared_statements")
        return {row[0] for row in uow._cursor.fetchall()}


def test_an_unreachable_database_raises_database_unavailable_not_the_drivers_error(
    db, monkeypatch
):
    from db import connection

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    connection.reset_dsn()
    try:
        with pytest.raises(DatabaseUnavailable) as raised, UnitOfWork():
            pass
    finally:
        monkeypatch.undo()
        connection.reset_dsn()
    assert isinstance(raised.value.__cause__, psycopg2.OperationalError)


def test_a_session_the_server_ends_mid_transaction_is_unavailable_and_the_next_one_works(db):
    with pytest.raises(DatabaseUnavailable), UnitOfWork() as uow:
        uow._cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    with UnitOfWork() as uow:
        uow._cursor.execute("SELECT 1")
        assert uow._cursor.fetchone() == (1,)


def test_a_failed_statement_is_a_database_error_and_leaves_nothing_behind(db):
    with pytest.raises(DatabaseError) as raised, UnitOfWork() as uow:
        uow._cursor.execute("SELECT 1 FROM no_such_table")
    assert not isinstance(raised.value, DatabaseUnavailable)
    assert _backend_pid() > 0  # the connection is still usable
