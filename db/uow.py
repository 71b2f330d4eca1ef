"""Unit of work: one transaction, committed explicitly, rolled back by default.

Driver errors leave it as `db.errors` exceptions (`DatabaseUnavailable` when the server cannot
be reached), so no caller outside db/ needs to know the driver.
"""

from __future__ import annotations

from types import TracebackType

import psycopg2
import psycopg2.extras

from db.connection import discard_connection, get_connection
from db.errors import translated, translating
from db.provider_events import ProviderEventRepository
from db.reconciliation import ReconcilerQueries
from db.reporting import Reporting
from db.repository import OrderRepository, OutboxRepository, PaymentRepository

psycopg2.extras.register_uuid()


class UnitOfWork:
    """`with UnitOfWork() as uow: ...; uow.commit()` — anything not committed is rolled back.

    `UnitOfWork(single_statement=True)` is for work that is one SQL statement: the statement is
    atomic by itself, so it runs in autocommit mode and saves the BEGIN and COMMIT round trips.
    """

    def __init__(self, single_statement: bool = False) -> None:
        self._single_statement = single_statement

    def __enter__(self) -> UnitOfWork:
        with translating():
            self._conn = get_connection()
        self._conn.autocommit = self._single_statement
        self._cursor = self._conn.cursor()
        self.orders = OrderRepository(self._cursor)
        self.outbox = OutboxRepository(self._cursor)
        self.payments = PaymentRepository(self._cursor)
        self.reporting = Reporting(self._cursor)
        self.provider_events = ProviderEventRepository(self._cursor)
        self.reconciliation = ReconcilerQueries(self._cursor)
        return self

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        self._conn.rollback()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        """Close the transaction, `exc` being what left the `with` block (or None).

        Apart from `__exit__` so that a subclass (the unit tests' in-memory one) changes how
        the transaction ends without restating the context-manager protocol."""
        try:
            self._cursor.close()
            if self._single_statement:
                self._conn.autocommit = False
            self._conn.rollback()
        except psycopg2.Error:
            discard_connection()
        else:
            if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
                # The server may have dropped us; the next unit of work gets a fresh connection.
                discard_connection()
        if isinstance(exc, psycopg2.Error):
            raise translated(exc) from exc
