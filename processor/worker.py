"""Long-running SQS consumer for ECS Fargate and the local system.

It calls the same `consumer.handle_batch` as the Lambda handler. Extras a long-lived process
needs: several consumer threads, long polling, a heartbeat that extends the visibility of
in-flight messages, an outbox sweeper loop, and a graceful stop on SIGTERM/SIGINT (in-flight
messages finish, received-but-unstarted ones are released at once).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass

from processor import outbox
from processor.aws import client
from processor.config import settings
from processor.consumer import BatchOutcome, QueueMessage, handle_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 4
    wait_seconds: int = 20
    visibility_timeout: int = 60
    sweep_interval: float = 30.0


class Worker:
    def __init__(self, options: WorkerOptions, stop: threading.Event | None = None) -> None:
        self.options = options
        self.stop = stop or threading.Event()
        self._in_flight: dict[str, str] = {}  # message id -> receipt handle
        self._lock = threading.Lock()
        self.processed = 0

    def run(self) -> None:
        queue_url = settings().queue_url
        if not queue_url:
            raise RuntimeError("ORDER_QUEUE_URL is not set")
        threads = [
            threading.Thread(target=self._consume, args=(queue_url,), name=f"consumer-{n}")
            for n in range(self.options.concurrency)
        ]
        threads.append(threading.Thread(target=self._heartbeat, args=(queue_url,), name="beat"))
        if self.options.sweep_interval > 0:
            threads.append(threading.Thread(target=self._sweep, name="sweeper"))
        for thread in threads:
            thread.start()
        log.info("worker started: %d consumers on %s", self.options.concurrency, queue_url)
        for thread in threads:
            thread.join()
        log.info("worker stopped after %d messages", self.processed)

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop.set())

    def _consume(self, queue_url: str) -> None:
        sqs = client("sqs")
        while not self.stop.is_set():
            try:
                response = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=self.options.wait_seconds,
                    VisibilityTimeout=self.options.visibility_timeout,
                    AttributeNames=["ApproximateReceiveCount"],
                )
            except Exception:
                log.warning("receive failed; retrying", exc_info=True)
                self.stop.wait(1.0)
                continue
            messages = [QueueMessage.from_sqs(m) for m in response.get("Messages", [])]
            if not messages:
                continue
            with self._lock:
                self._in_flight.update({m.message_id: m.receipt_handle for m in messages})
            try:
                outcome = handle_batch(messages, should_stop=self.stop.is_set)
                self._settle(queue_url, outcome)
                self.processed += len(outcome.done)
            finally:
                with self._lock:
                    for message in messages:
                        self._in_flight.pop(message.message_id, None)

    def _settle(self, queue_url: str, outcome: BatchOutcome) -> None:
        """Delete what is done and release what was not started.

        An SQS error here must not end the consumer thread (the worker would look alive and
        consume nothing): those messages merely come back after their visibility timeout, and
        processing them again changes nothing.
        """
        for settle, messages in (
            (self._delete, outcome.done),
            (self._release, outcome.not_started),
        ):
            try:
                settle(queue_url, messages)
            except Exception:
                log.warning(
                    "could not settle %d message(s); SQS will redeliver them",
                    len(messages),
                    exc_info=True,
                )

    def _delete(self, queue_url: str, messages: list[QueueMessage]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            client("sqs").delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m.receipt_handle} for n, m in enumerate(chunk)
                ],
            )

    def _release(self, queue_url: str, messages: list[QueueMessage]) -> None:
        """Make unstarted messages visible again now instead of after the visibility timeout."""
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            client("sqs").change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                    for n, m in enumerate(chunk)
                ],
            )

    def _heartbeat(self, queue_url: str) -> None:
        """Keep long-running messages invisible so no other consumer starts them meanwhile."""
        interval = max(1.0, self.options.visibility_timeout / 3)
        while not self.stop.wait(interval):
            with self._lock:
                handles = list(self._in_flight.values())
            for start in range(0, len(handles), 10):
                entries = [
                    {
                        "Id": str(n),
                        "ReceiptHandle": h,
                        "VisibilityTimeout": self.options.visibility_timeout,
                    }
                    for n, h in enumerate(handles[start : start + 10])
                ]
                try:
                    client("sqs").change_message_visibility_batch(
                        QueueUrl=queue_url, Entries=entries
                    )
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


def run_worker(options: WorkerOptions) -> None:
    worker = Worker(options)
    worker.install_signal_handlers()
    started = time.monotonic()
    worker.run()
    log.info("ran for %.1f s", time.monotonic() - started)
