"""The database's failures in this package's own terms, so callers never import psycopg2.

`DatabaseUnavailable` is the one callers act on (503 with Retry-After, a retried message, exit
status 2): the server could not be reached or dropped the session, and trying again later may
succeed. Every other driver error is a `DatabaseError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the API's error mapping imports this module on every cold start
    import psycopg2


class DatabaseError(Exception):
    """A database operation failed; the driver's exception is the `__cause__`."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached right now (connect refused, server gone, link broken)."""


def translated(error: psycopg2.Error) -> DatabaseError:
    """The package's exception for a driver error (connection-level ones are unavailable)."""
    import psycopg2

    if isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        return DatabaseUnavailable(" ".join(str(error).split()) or type(error).__name__)
    return DatabaseError(" ".join(str(error).split()) or type(error).__name__)


@contextmanager
def translating() -> Iterator[None]:
    """Raise driver errors from the block as this package's exceptions."""
    import psycopg2

    try:
        yield
    except psycopg2.Error as error:
        raise translated(error) from error
