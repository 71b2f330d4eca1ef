"""Small helpers shared by tests: build requests, read queues and the database."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from processor.adapters.aws import client
from processor.adapters.sqs import Queue
from processor.api.schemas import CreateOrderRequest

if TYPE_CHECKING:
    from processor.entrypoints.worker import Delivery, Worker, WorkerOptions


def order_request(email: str = "ada@example.com", **overrides: Any) -> CreateOrderRequest:
    data: dict[str, Any] = {
        "customer_email": email,
        "customer_name": "Ada Lovelace",
        "items": [
            {"product_name": "Widget", "quantity": 2, "unit_price": Decimal("24.99")},
            {"product_name": "Gadget", "quantity": 1, "unit_price": Decimal("75.99")},
        ],
    }
    data.update(overrides)
    return CreateOrderRequest.model_validate(data)


def receive_all(queue_url: str, visibility: int = 30) -> list[dict[str, Any]]:
    """Drain currently visible messages (they stay invisible for `visibility` seconds)."""
    queue = Queue(queue_url)
    found: list[dict[str, Any]] = []
    while batch := queue.receive(visibility_timeout=visibility):
        found.extend(batch)
    return found


def count(db: Any, sql: str, *params: Any) -> int:
    with db.cursor() as cur:
        cur.execute(sql, params)
        return int(cur.fetchone()[0])


def rows(db: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with db.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


# --- Order processing: providers, lifecycle, emails, queues, invariants ---------------------
# (Imports are local so that this section only appends to the module.)

LIFECYCLE = ("PENDING", "PROCESSING", "PAYMENT_CONFIRMED", "FULFILLED", "COMPLETED")


class CountingProvider:
    """The deterministic simulator behind a thread-safe call log.

    `calls` holds (idempotency_key, attempt) per authorisation call, `operations` holds
    (operation, idempotency_key) for every call, and `authorizations` the answer per key
    (`charged_keys`: the keys whose authorisation was approved).
    """

    def __init__(self) -> None:
        import threading

        from processor.adapters.payments.simulator import SimulatedPaymentProvider
        from processor.config import settings

        self.simulator = SimulatedPaymentProvider(settings())
        self.identifier = self.simulator.identifier
        self.requires_payment_method = False
        self.calls: list[tuple[str, int]] = []
        self.operations: list[tuple[str, str]] = []
        self.authorizations: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _log(self, operation: str, key: str) -> None:
        with self._lock:
            self.operations.append((operation, key))

    def authorize(self, request: Any) -> Any:
        with self._lock:
            self.calls.append((request.idempotency_key, request.attempt))
        self._log("authorize", request.idempotency_key)
        result = self.simulator.authorize(request)
        with self._lock:
            self.authorizations[request.idempotency_key] = result
        return result

    def capture(self, idempotency_key: str, reference: str, amount_minor: int) -> Any:
        self._log("capture", idempotency_key)
        return self.simulator.capture(idempotency_key, reference, amount_minor)

    def cancel(self, idempotency_key: str, reference: str) -> Any:
        self._log("cancel", idempotency_key)
        return self.simulator.cancel(idempotency_key, reference)

    def refund(self, idempotency_key: str, reference: str, amount_minor: int, reason: Any) -> Any:
        self._log("refund", idempotency_key)
        return self.simulator.refund(idempotency_key, reference, amount_minor, reason)

    def retrieve(self, reference: str) -> Any:
        return self.simulator.retrieve(reference)

    def webhook_action(self, body: bytes, headers: Any) -> Any:
        return self.simulator.webhook_action(body, headers)

    @property
    def charged_keys(self) -> set[str]:
        with self._lock:
            return {key for key, result in self.authorizations.items() if result.approved}


class BlockingProvider(CountingProvider):
    """Holds every authorisation until `release` is set; `entered` is set once one began."""

    def __init__(self) -> None:
        import threading

        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.waiting = 0

    def authorize(self, request: Any) -> Any:
        with self._lock:
            self.waiting += 1
        self.entered.set()
        if not self.release.wait(timeout=30):
            raise TimeoutError("the test never released the payment provider")
        return super().authorize(request)


def wait_until(
    predicate: Any, timeout: float = 10.0, what: str = "condition", every: float = 0.02
) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def status_of(db: Any, order_id: Any) -> str | None:
    found = rows(db, "SELECT status FROM orders WHERE order_id = %s", str(order_id))
    return found[0][0] if found else None


def history_of(db: Any, order_id: Any) -> list[str]:
    """Saved statuses of one order, oldest first."""
    found = rows(
        db,
        "SELECT status FROM order_status_history WHERE order_id = %s ORDER BY id",
        str(order_id),
    )
    return [status for (status,) in found]


def authorize_key(order_id: Any) -> str:
    return f"order-{order_id}-authorize"


def payments_of(db: Any, order_id: Any) -> list[tuple[Any, ...]]:
    """(outcome, amount, provider_ref, decline_reason, attempts) rows of one order."""
    return rows(
        db,
        "SELECT outcome, amount, provider_ref, decline_reason, attempts FROM payments"
        " WHERE order_id = %s",
        str(order_id),
    )


def advance_to(order_id: Any, target: str) -> None:
    """Run the processor's real steps until the order reaches `target`."""
    from uuid import UUID

    from db.uow import UnitOfWork
    from processor.bootstrap import dependencies
    from processor.domain.model import Status, is_final
    from processor.processing.service import STEPS

    order_uuid = UUID(str(order_id))
    while True:
        with UnitOfWork() as uow:
            status = Status(uow.orders.get_status(order_uuid))
        if status == target:
            return
        if is_final(status):
            raise AssertionError(f"order stopped at {status}, never reached {target}")
        STEPS[status](order_uuid, dependencies())


def emailed_statuses(endpoint: str, order_id: Any) -> list[str]:
    """Statuses announced by the emails moto recorded for one order, in sending order."""
    import re

    from processor.devstack.local import sent_emails

    found = []
    for email in sent_emails(endpoint):
        match = re.search(r"Order (\S+) is now ([a-z ]+)\.", email["body"] or "")
        if match and match.group(1) == str(order_id):
            found.append(match.group(2).upper().replace(" ", "_"))
    return found


def subscribe_tap(topic_arn: str, name: str, filter_policy: dict[str, Any] | None = None) -> str:
    """An SQS queue subscribed to the topic (optionally filtered); returns its URL."""
    import json

    sqs = client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
    client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return url


def tapped_events(queue_url: str) -> list[tuple[str, dict[str, Any]]]:
    """(status message attribute, decoded event) for each SNS notification on a tap queue."""
    import json

    found = []
    for message in receive_all(queue_url):
        envelope = json.loads(message["Body"])
        found.append(
            (envelope["MessageAttributes"]["status"]["Value"], json.loads(envelope["Message"]))
        )
    return found


def queue_depth(queue_url: str) -> tuple[int, int]:
    """(visible, in flight) message counts."""
    depth = Queue(queue_url).depth()
    return depth["visible"], depth["in_flight"]


def lambda_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """An SQS Lambda event built from `receive_message` output (real ids and handles)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get(
                        "ApproximateReceiveCount", "1"
                    )
                },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orderflow-orders",
            }
            for m in messages
        ]
    }


def consume_once(queue_url: str) -> Any:
    """One consumer pass as the worker does it: receive, `handle_batch`, delete what is done."""
    from processor.entrypoints.consumer import BatchOutcome, QueueMessage, handle_batch

    outcome = BatchOutcome()
    for message in receive_all(queue_url):
        batch = handle_batch([QueueMessage.from_sqs(message)])
        for done in batch.done:
            client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=done.receipt_handle)
        outcome.done += batch.done
        outcome.failed += batch.failed
    return outcome


def invariant_violations() -> list[str]:
    """The operators' invariant checker on DATABASE_URL (the test database), minus its
    time-based rules: a test finishes long before any deadline they could use."""
    from processor.ops.invariants import check

    report = check(deadline_seconds=10**9, include_queues=False)
    return [f"{f.kind} {f.order_id}: {f.detail}" for f in report.findings]


@contextlib.contextmanager
def worker_on_thread(
    options: WorkerOptions, name: str, delivery: Delivery | None = None
) -> Iterator[tuple[Worker, threading.Thread]]:
    """`options`' worker on its own thread for the block, then stopped gracefully.

    One stop for every test that runs a worker: set the stop event, join for a bounded time
    and fail if the thread still runs, so that a worker which ignores its stop shows up here
    instead of leaking into the tests after it. The thread is yielded too, for tests that
    check the worker survived something."""
    from processor.entrypoints.worker import Worker

    worker = Worker(options, delivery=delivery)
    thread = threading.Thread(target=worker.run, name=name)
    thread.start()
    try:
        yield worker, thread
    finally:
        worker.stop.set()
        thread.join(15)
    assert not thread.is_alive(), f"the worker on thread {name} did not stop"


# What only a laptop or a build uses: the local supervisor, emulators and embedded database,
# the worker image's build files, benchmarks and tests. Neither deployment.zip nor the worker
# image may carry any of it.
DEVELOPMENT_ONLY_DIRS = ("processor/devstack/", "pulumi/", "bench/", "tests/")
BUILD_FILES = ("Dockerfile", "Dockerfile.dockerignore", "requirements.txt",
               "worker-requirements.txt")


def development_only(paths: Iterable[str]) -> list[str]:
    """The development-only entries among `paths` (relative, `/`-separated)."""
    return [path for path in paths
            if path.startswith(DEVELOPMENT_ONLY_DIRS) or path.rsplit("/", 1)[-1] in BUILD_FILES]
