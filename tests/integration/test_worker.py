"""The long-running worker (Fargate and local) against moto: it processes what arrives, sweeps
the outbox, and on a stop (or SIGTERM) finishes the message in flight and releases the rest."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from processor import bootstrap
from processor.adapters import aws
from processor.adapters.aws import client
from processor.entrypoints.worker import Worker, WorkerOptions
from processor.orders import service as order_service
from tests.helpers import (
    BlockingProvider,
    CountingProvider,
    order_request,
    queue_depth,
    rows,
    status_of,
    wait_until,
    worker_on_thread,
)

REPO = Path(__file__).resolve().parents[2]
FINAL = {"COMPLETED", "PAYMENT_FAILED", "CANCELLED"}


pytestmark = pytest.mark.usefixtures("invariants_hold")


@contextlib.contextmanager
def running(options: WorkerOptions | None = None) -> Iterator[Worker]:
    """A worker on its own thread for the duration of the block, stopped gracefully after."""
    default = WorkerOptions(concurrency=2, wait_seconds=1, sweep_interval=0)
    with worker_on_thread(options or default, "test-worker") as (worker, _thread):
        yield worker


def _create(*emails: str) -> list[str]:
    return [order_service.create_order(order_request(email))[0]["order_id"] for email in emails]


def _statuses(db: Any) -> dict[str, str]:
    found = rows(db, "SELECT order_id, status FROM orders")
    return {str(order_id): status for order_id, status in found}


def _all_final(db: Any) -> bool:
    return set(_statuses(db).values()) <= FINAL


def test_a_running_worker_processes_orders_as_they_arrive(system):
    provider = CountingProvider()
    bootstrap.set_payment_provider(provider)
    with running() as worker:
        orders = _create(
            "a@example.com", "b+decline@example.com", "c+flaky@example.com", "d@example.com"
        )
        wait_until(lambda: _all_final(system["db"]), what="every order to be final")
    assert _statuses(system["db"]) == {
        orders[0]: "COMPLETED",
        orders[1]: "PAYMENT_FAILED",
        orders[2]: "COMPLETED",
        orders[3]: "COMPLETED",
    }
    assert worker.processed == 4
    assert queue_depth(system["ORDER_QUEUE_URL"]) == (0, 0)
    assert len(provider.calls) == 1 + 1 + 3 + 1  # the flaky one needed three attempts


def test_a_stop_mid_batch_finishes_the_message_in_flight_and_releases_the_others(system):
    blocking = BlockingProvider()
    bootstrap.set_payment_provider(blocking)
    orders = _create(*(f"customer{n}@example.com" for n in range(4)))  # queued before start

    with running(WorkerOptions(concurrency=1, wait_seconds=1, sweep_interval=0)) as worker:
        assert blocking.entered.wait(10)  # one batch of four received, the first one charging
        worker.stop.set()
        blocking.release.set()

    statuses = _statuses(system["db"])
    assert sorted(statuses.values()) == ["COMPLETED", "PENDING", "PENDING", "PENDING"]
    assert worker.processed == 1
    assert len(blocking.calls) == 1
    assert queue_depth(system["ORDER_QUEUE_URL"]) == (3, 0)  # visible again at once

    second = CountingProvider()
    bootstrap.set_payment_provider(second)
    with running():
        wait_until(lambda: _all_final(system["db"]), what="the second run to finish the rest")
    assert set(_statuses(system["db"]).values()) == {"COMPLETED"}
    assert sorted(key for key, _ in blocking.calls + second.calls) == sorted(
        f"order-{order_id}-authorize" for order_id in orders
    )
    assert queue_depth(system["ORDER_QUEUE_URL"]) == (0, 0)


def test_the_worker_sweeps_an_order_the_relay_could_not_queue(system, configure):
    configure(OUTBOX_GRACE_SECONDS="0")
    down = boto3.client(
        "sqs", endpoint_url="http://127.0.0.1:9", config=Config(retries={"max_attempts": 1})
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(aws._clients, "sqs", down)
        (order_id,) = _create("ada@example.com")
    assert queue_depth(system["ORDER_QUEUE_URL"]) == (0, 0)

    with running(WorkerOptions(concurrency=1, wait_seconds=1, sweep_interval=0.05)):
        wait_until(lambda: status_of(system["db"], order_id) == "COMPLETED", what="completion")


def test_a_failed_acknowledgement_does_not_stop_the_consumer(system):
    """An SQS error while deleting processed messages must not kill the consumer thread."""
    failures = []

    def fail_once(**_: Any) -> None:
        if not failures:
            failures.append("DeleteMessageBatch")
            raise EndpointConnectionError(endpoint_url="http://sqs.invalid")

    sqs = client("sqs")
    sqs.meta.events.register("before-call.sqs.DeleteMessageBatch", fail_once)
    try:
        with running(WorkerOptions(concurrency=1, wait_seconds=1, sweep_interval=0)):
            (first,) = _create("a@example.com")
            wait_until(lambda: failures, what="the failed delete")
            (second,) = _create("b@example.com")
            wait_until(
                lambda: status_of(system["db"], second) == "COMPLETED",
                what="the consumer to go on after the failed delete",
            )
    finally:
        sqs.meta.events.unregister("before-call.sqs.DeleteMessageBatch", fail_once)
    assert status_of(system["db"], first) == "COMPLETED"


def _worker_process(*args: str, **env: str) -> subprocess.Popen[str]:
    """`python -m processor worker` in its own process group, as a terminal or ECS runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "processor", "worker", *args],
        cwd=REPO,
        env={**os.environ, "METRICS_DISABLED": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _signal_twice_and_wait(process: subprocess.Popen[str], signum: int) -> tuple[float, str]:
    """Signal the whole group twice in a row (a Ctrl-C under `make`); seconds to exit."""
    started = time.monotonic()
    os.killpg(process.pid, signum)
    os.killpg(process.pid, signum)
    try:
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return time.monotonic() - started, output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_two_signals_under_load_stop_the_worker_without_losing_a_message(system, signum):
    orders = _create(*(f"customer{n}@example.com" for n in range(4)))
    process = _worker_process(
        "--concurrency=1", "--wait-seconds=1", "--sweep-interval=0", PAYMENT_LATENCY_MS="1000"
    )
    try:
        # PROCESSING is committed just before the (one second) charge: the batch is mid-way.
        wait_until(
            lambda: "PROCESSING" in _statuses(system["db"]).values(),
            timeout=20,
            what="the worker process to start charging",
        )
    finally:
        seconds, output = _signal_twice_and_wait(process, signum)

    assert process.returncode == 0, output
    assert seconds < 10, output
    statuses = _statuses(system["db"])
    assert sorted(statuses.values()) == ["COMPLETED", "PENDING", "PENDING", "PENDING"], output
    assert queue_depth(system["ORDER_QUEUE_URL"]) == (3, 0)  # released, not left invisible

    with running():
        wait_until(lambda: _all_final(system["db"]), what="a new worker to finish the rest")
    assert set(_statuses(system["db"]).values()) == {"COMPLETED"}
    assert sorted(_statuses(system["db"])) == sorted(orders)


def test_two_signals_stop_an_idle_worker_within_ten_seconds_with_its_default_long_poll(system):
    process = _worker_process()
    started = []
    try:
        assert process.stdout is not None
        for line in process.stdout:  # its consumers go into their long polls right after
            started.append(line)
            if "worker started" in line:
                break
    finally:
        seconds, output = _signal_twice_and_wait(process, signal.SIGTERM)
    assert process.returncode == 0, "".join(started) + output
    assert seconds < 10, output
    assert "worker stopped" in output


def test_the_heartbeat_keeps_a_slow_message_from_a_second_consumer(system):
    blocking = BlockingProvider()
    bootstrap.set_payment_provider(blocking)
    beats: list[int] = []
    received: list[str] = []

    def on_beat(params: dict[str, Any], **_: Any) -> None:
        beats.extend(entry["VisibilityTimeout"] for entry in params["Entries"])

    def on_receive(parsed: dict[str, Any], **_: Any) -> None:
        received.extend(m["MessageId"] for m in parsed.get("Messages", []))

    sqs = client("sqs")
    hooks = [
        ("provide-client-params.sqs.ChangeMessageVisibilityBatch", on_beat),
        ("after-call.sqs.ReceiveMessage", on_receive),
    ]
    for event, hook in hooks:
        sqs.meta.events.register(event, hook)
    options = WorkerOptions(concurrency=2, wait_seconds=1, visibility_timeout=2, sweep_interval=0)
    try:
        with running(options):
            (order_id,) = _create("ada@example.com")
            assert blocking.entered.wait(10)
            # Three beats, one a second: the charge outlasts the 2 s visibility timeout while
            # the other consumer keeps polling.
            wait_until(lambda: len(beats) >= 3, what="three heartbeats")
            blocking.release.set()
            wait_until(lambda: status_of(system["db"], order_id) == "COMPLETED", what="completion")
    finally:
        for event, hook in hooks:
            sqs.meta.events.unregister(event, hook)

    assert set(beats[:3]) == {2}
    assert len(received) == 1  # never handed to the second consumer
    assert len(blocking.calls) == 1
