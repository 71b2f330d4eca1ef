"""The machinery the benchmarks run on: PostgreSQL, a moto server, settings, AWS stubs.

`start_environment` brings up an embedded PostgreSQL (or uses `DATABASE_URL`) and a moto server
in its own process, so the emulator does not compete with the code under test for the GIL.
The smoke test builds a `BenchEnv` from the test fixtures instead.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2

from db.connection import reset_dsn
from db.migrate import migrate
from processor.adapters import aws
from processor.config import settings
from processor.devstack.postgres import (
    ensure_database,
    start_server,
    truncate_data,
    with_database,
)

REPO = Path(__file__).resolve().parent.parent
BENCH_DATA = REPO / ".local" / "bench"
DATABASE = "orderflow_bench"
AWS_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "SENDER_EMAIL": "orders@orderflow.bench",
}


@dataclass
class BenchEnv:
    """Where the benchmarks run: one PostgreSQL server, one moto endpoint."""

    database_url: str
    aws_endpoint: str
    resources: dict[str, str] = field(default_factory=dict)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def database(self, name: str, recreate: bool = False) -> str:
        """URL of another migrated database on the same server."""
        url = ensure_database(with_database(self.database_url, "postgres"), name, recreate)
        migrate(url)
        return url

    def truncate(self) -> None:
        with autocommit(self.database_url) as conn:
            truncate_data(conn)

    def fresh_queue(self, name: str) -> str:
        """A new, empty order queue (moto slows down with every message a queue has held)."""
        return aws.client("sqs").create_queue(
            QueueName=f"{name}-{time.monotonic_ns()}", Attributes={"VisibilityTimeout": "60"}
        )["QueueUrl"]

    def stop(self) -> None:
        self._stack.close()


@contextlib.contextmanager
def autocommit(url: str) -> Iterator[Any]:
    """A separate autocommit connection (setup, polling, inspection), closed afterwards."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def start_environment(data_dir: Path = BENCH_DATA) -> BenchEnv:
    """Embedded PostgreSQL (unless DATABASE_URL) + a moto server process; env vars set."""
    from processor.devstack.local import create_aws_resources

    stack = contextlib.ExitStack()
    try:
        given = os.environ.get("DATABASE_URL")
        if given:
            server_uri = with_database(given, "postgres")
        else:
            server = start_server(data_dir / "pgdata")
            stack.callback(server.cleanup)
            server_uri = server.get_uri()
        url = ensure_database(server_uri, DATABASE, recreate=True)
        migrate(url)
        endpoint, ses_endpoint = _start_moto(stack)
        env = BenchEnv(url, endpoint, _stack=stack)
        stack.enter_context(
            configured(
                DATABASE_URL=url,
                AWS_ENDPOINT_URL=endpoint,
                AWS_ENDPOINT_URL_SES=ses_endpoint,
                **AWS_ENV,
            )
        )
        env.resources = create_aws_resources(AWS_ENV["SENDER_EMAIL"])
        return env
    except BaseException:
        stack.close()
        raise


def _start_moto(stack: contextlib.ExitStack) -> tuple[str, str]:
    """The emulators `make run` uses (processor.devstack.emulator): SQS/SNS and SES, each in
    its own process."""
    from processor.devstack.local import start_emulators

    emulators = start_emulators()
    for emulator in emulators:
        stack.callback(emulator.stop)
    return emulators[0].endpoint, emulators[1].endpoint


def _refresh() -> None:
    settings.cache_clear()
    aws.reset_clients()
    reset_dsn()


@contextlib.contextmanager
def configured(**env: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables and drop every cache that read them."""
    saved = {key: os.environ.get(key) for key in env}
    try:
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _refresh()
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _refresh()


class StubClient:
    """A boto3 client that answers at once: measures our code with AWS latency taken out.

    It counts the API calls by operation name, so a benchmark can report the AWS requests
    an order costs (what bench/capacity.py turns into request rates and prices).
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["send_message_batch"] += 1
        return {"Successful": [{"Id": entry["Id"]} for entry in kwargs["Entries"]], "Failed": []}

    def publish_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["publish_batch"] += 1
        entries = kwargs["PublishBatchRequestEntries"]
        return {"Successful": [{"Id": entry["Id"]} for entry in entries], "Failed": []}

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls[name] += 1
            return {}

        return call


@contextlib.contextmanager
def stub_aws() -> Iterator[StubClient]:
    """Replace the shared SQS/SES/SNS clients with an instant stub for the block."""
    stub = StubClient()
    aws.reset_clients()
    aws._clients.update(sqs=stub, ses=stub, sns=stub)
    try:
        yield stub
    finally:
        aws.reset_clients()


class _ByteCounter(io.TextIOBase):
    """A text sink that only counts the UTF-8 bytes written to it."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        return len(text)


@contextlib.contextmanager
def count_output() -> Iterator[_ByteCounter]:
    """Count what the block writes as logs and EMF metrics (stdout, stderr, log handlers):
    in Lambda and on Fargate all of it is ingested by CloudWatch Logs, which bills by byte."""
    counter = _ByteCounter()
    with contextlib.redirect_stdout(counter), contextlib.redirect_stderr(counter):
        swapped = [
            (handler, handler.setStream(counter))
            for handler in logging.getLogger().handlers
            if isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler)
        ]
        try:
            yield counter
        finally:
            for handler, stream in swapped:
                handler.setStream(stream)


@contextlib.contextmanager
def quiet_application_output() -> Iterator[None]:
    """Send the service's JSON logs, EMF metric lines and the local HTTP servers' request
    logs to /dev/null instead of the console.

    They are still formatted and written (as in Lambda, where stdout goes to CloudWatch), so
    their cost stays in the measurements; only the terminal is spared.
    """
    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        swapped = []
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            ):
                swapped.append((handler, handler.setStream(sink)))
        try:
            yield
        finally:
            for handler, stream in swapped:
                handler.setStream(stream)
