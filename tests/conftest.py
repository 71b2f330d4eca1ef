"""Real infrastructure for tests: embedded PostgreSQL (or DATABASE_URL) and a moto server."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from db.connection import reset_dsn
from db.migrate import migrate
from processor.adapters.aws import reset_clients
from processor.config import settings
from processor.devstack.local import create_aws_resources
from processor.devstack.postgres import ensure_database, start_server, truncate_data


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("DATABASE_URL")
    server = None
    if given:
        url = given
    else:
        server = start_server(Path(tmp_path_factory.mktemp("pg")) / "data")
        url = ensure_database(server.get_uri(), "orderflow_test", recreate=True)
    migrate(url)
    os.environ["DATABASE_URL"] = url
    reset_dsn()
    yield url
    reset_dsn()
    if server is not None:
        server.cleanup()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        SENDER_EMAIL="orders@orderflow.test",
    )
    reset_clients()
    yield endpoint
    server.stop()


@pytest.fixture
def db(database_url: str) -> Iterator[Any]:
    """A clean database and a separate autocommit connection for assertions."""
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    truncate_data(conn)
    yield conn
    conn.close()


@pytest.fixture
def fresh_moto(moto_endpoint: str) -> str:
    """The session's moto server with whatever earlier tests created removed, so a test that
    creates resources with its own attributes never meets another test's queue of that name."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    return moto_endpoint


@pytest.fixture
def aws(fresh_moto: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Fresh queues, DLQ, topic and verified sender on the moto server."""
    resources = create_aws_resources("orders@orderflow.test", max_receive_count=3)
    for key, value in resources.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PAYMENT_RETRY_BASE_SECONDS", "0")
    monkeypatch.setenv("RETRY_VISIBILITY_BASE_SECONDS", "0")
    settings.cache_clear()
    yield {**resources, "AWS_ENDPOINT_URL": fresh_moto}
    settings.cache_clear()


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set environment settings for one test: `configure(PAYMENT_DECLINE_RATE="1")`."""

    def apply(**env: str) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings.cache_clear()

    yield apply
    settings.cache_clear()


@pytest.fixture
def system(db: Any, aws: dict[str, str]) -> dict[str, Any]:
    """Database and AWS ready for service-level tests."""
    from processor import bootstrap

    bootstrap.set_payment_provider(None)
    return {"db": db, **aws}
