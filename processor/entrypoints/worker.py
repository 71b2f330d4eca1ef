"""Long-running SQS consumer for ECS Fargate and the local system.

Two deliveries, one processing path. `worker` (Fargate) calls `consumer.handle_batch` itself:
several consumer threads, long polling, a heartbeat that extends the visibility of in-flight
messages. `lambda` (the local default, as in the cloud) hands each batch to a `Delivery`
given by the caller: locally the Chalice `process_orders` handler, invoked the way the SQS
event source mapping does (`processor.devstack.event_source`, which never ships).
Both run the outbox sweeper loop and stop gracefully on SIGTERM/SIGINT: in-flight messages
finish, received-but-unstarted ones are released at once, within STOP_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from processor.adapters.sqs import Queue, chunks
from processor.config import settings
from processor.entrypoints.consumer import BatchOutcome, QueueMessage, handle_batch
from processor.entrypoints.stopping import StopSignals
from processor.outbox import relay as outbox

log = logging.getLogger(__name__)
# The two doors into the processing code: `handle_batch` here, or a `Delivery` (lambda).
DELIVERIES = ("worker", "lambda")
# A stop must end within 10 s (ECS waits 30 s before SIGKILL; a developer's patience less).
# A consumer blocked in a long poll only notices it when the poll returns, hence the limit on
# `wait_seconds`; what is still running after STOP_SECONDS is abandoned (and redelivered).
STOP_SECONDS = 9.0
MAX_WAIT_SECONDS = 5


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 4
    wait_seconds: int = MAX_WAIT_SECONDS
    visibility_timeout: int = 60
    sweep_interval: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.wait_seconds <= MAX_WAIT_SECONDS:
            raise ValueError(f"wait_seconds must be 0-{MAX_WAIT_SECONDS} (stops take one poll)")


class Delivery(Protocol):
    """Hands a received batch to a handler other than `handle_batch` (the `lambda` delivery)."""

    @property
    def batch_size(self) -> int: ...

    def deliver(self, messages: list[dict[str, Any]], stopping: bool) -> BatchOutcome: ...


class Worker:
    """Consumes the queue: batches go to `handle_batch` here (Fargate), or to `delivery`."""

    def __init__(
        self,
        options: WorkerOptions,
        stop: threading.Event | None = None,
        delivery: Delivery | None = None,
    ) -> None:
        self.options = options
        self.stop = stop or threading.Event()
        self.delivery = delivery
        self._in_flight: dict[str, str] = {}  # message id -> receipt handle
        self._lock = threading.Lock()
        self.processed = 0

    def run(self) -> None:
        """Consume until `stop` is set; returns once every thread has finished.

        The threads are daemons so that a process whose stop outlasts STOP_SECONDS can still
        exit (see `run_worker`)."""
        queue_url = settings().queue_url
        if not queue_url:
            raise RuntimeError("ORDER_QUEUE_URL is not set")
        queue = Queue(queue_url)
        lambda_delivery = self.delivery
        threads = [
            threading.Thread(
                target=self._consume,
                args=(queue, lambda_delivery),
                name=f"consumer-{n}",
                daemon=True,
            )
            for n in range(self.options.concurrency)
        ]
        if lambda_delivery is None:  # the event source mapping never extends visibility
            threads.append(
                threading.Thread(
                    target=self._heartbeat, args=(queue,), name="beat", daemon=True
                )
            )
        if self.options.sweep_interval > 0:
            threads.append(threading.Thread(target=self._sweep, name="sweeper", daemon=True))
        for thread in threads:
            thread.start()
        log.info(
            "worker started: %d %s consumers on %s",
            self.options.concurrency,
            "worker" if self.delivery is None else "lambda",
            queue_url,
        )
        for thread in threads:
            thread.join()
        log.info("worker stopped after %d messages", self.processed)

    def _consume(self, queue: Queue, lambda_delivery: Delivery | None) -> None:
        batch_size = lambda_delivery.batch_size if lambda_delivery else 10
        while not self.stop.is_set():
            try:
                raw = queue.receive(
                    batch_size,
                    wait_seconds=self.options.wait_seconds,
                    visibility_timeout=self.options.visibility_timeout,
                    all_attributes=lambda_delivery is not None,  # as Lambda's event records
                )
            except Exception:
                log.warning("receive failed; retrying", exc_info=True)
                self.stop.wait(1.0)
                continue
            if not raw:
                continue
            messages = [QueueMessage.from_sqs(m) for m in raw]
            with self._lock:
                self._in_flight.update({m.message_id: m.receipt_handle for m in messages})
            try:
                if lambda_delivery is not None:
                    outcome = lambda_delivery.deliver(raw, stopping=self.stop.is_set())
                else:
                    outcome = handle_batch(messages, should_stop=self.stop.is_set)
                self._settle(queue, outcome)
                self.processed += len(outcome.done)
            finally:
                with self._lock:
                    for message in messages:
                        self._in_flight.pop(message.message_id, None)

    def _settle(self, queue: Queue, outcome: BatchOutcome) -> None:
        """Delete what is done and release what was not started.

        An SQS error here must not end the consumer thread (the worker would look alive and
        consume nothing): those messages merely come back after their visibility timeout, and
        processing them again changes nothing.
        """
        if outcome.not_started:
            log.info("releasing %d unstarted message(s)", len(outcome.not_started))
        for settle, messages in (
            (queue.delete, outcome.done),
            (queue.release, outcome.not_started),  # visible now, not after the timeout
        ):
            try:
                settle([m.receipt_handle for m in messages])
            except Exception:
                log.warning(
                    "could not settle %d message(s); SQS will redeliver them",
                    len(messages),
                    exc_info=True,
                )

    def _heartbeat(self, queue: Queue) -> None:
        """Keep long-running messages invisible so no other consumer starts them meanwhile."""
        interval = max(1.0, self.options.visibility_timeout / 3)
        while not self.stop.wait(interval):
            with self._lock:
                handles = list(self._in_flight.values())
            for chunk in chunks(handles):  # one failed call must not skip the other chunks
                try:
                    queue.change_visibility(chunk, self.options.visibility_timeout)
                except Exception:
                    log.warning("visibility extension failed", exc_info=True)

    def _sweep(self) -> None:
        while not self.stop.wait(self.options.sweep_interval):
            try:
                result = outbox.sweep()
                if result.sent or result.failed:
                    log.info("outbox sweep: %d sent, %d failed", result.sent, result.failed)
            except Exception:
                log.warning("outbox sweep failed", exc_info=True)


def run_worker(options: WorkerOptions) -> int:
    """`python -m processor worker`: run until SIGTERM/SIGINT (any number of them), then stop
    within STOP_SECONDS. Returns the exit status (1 if the worker failed on its own)."""
    worker = Worker(options)
    failures: list[BaseException] = []
    started = time.monotonic()
    with StopSignals() as signals:
        runner = threading.Thread(
            target=_run_and_wake, args=(worker, signals, failures), name="worker", daemon=True
        )
        runner.start()
        signals.wait()
        if signals.requested:
            log.info("signal %s: stopping", signals.signum)
        stop_within(worker, runner, STOP_SECONDS)
    log.info("ran for %.1f s", time.monotonic() - started)
    return 1 if failures else 0


def stop_within(worker: Worker, runner: threading.Thread, seconds: float) -> None:
    """Stop the worker from this (main) thread and wait for it, but never longer than
    `seconds`: a consumer still busy then is abandoned and SQS redelivers its messages."""
    worker.stop.set()
    runner.join(seconds)
    if runner.is_alive():
        log.warning("worker still busy after %.0f s; its messages will be redelivered", seconds)


def _run_and_wake(worker: Worker, signals: StopSignals, failures: list[BaseException]) -> None:
    try:
        worker.run()
    except BaseException as error:
        log.exception("worker failed")
        failures.append(error)
    finally:
        signals.wake()
