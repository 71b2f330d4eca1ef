"""The real HTTP server for reliability and security tests.

Chalice's local server runs in this process (`processor.devstack.local.start_api`) on a
free port, against the session's embedded PostgreSQL and moto server, so requests cross a
real socket, the real routing, middleware and error mapping, exactly as `make run` serves them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from processor.devstack.local import free_port
from processor.devstack.postgres import data_tables
from tests.helpers import wait_until
from tests.reliability.chaos.client import http_call


@pytest.fixture(scope="session")
def api_url(database_url: str, moto_endpoint: str) -> Iterator[str]:
    from processor.devstack.local import start_api

    port = free_port()
    server = start_api("127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, name="reliability-api", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_call(url, "GET", "/openapi.json")[0] == 200, 15, "the API server")
    yield url
    server.shutdown()


def table_counts(db: Any) -> dict[str, int]:
    """Row count of every table the API writes: unchanged counts mean nothing was written."""
    with db.cursor() as cur:
        cur.execute(" UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in data_tables(db)))
        return {name: int(n) for name, n in cur.fetchall()}
