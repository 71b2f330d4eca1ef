"""The SQS event source mapping, locally: queue messages reach the Chalice `process_orders`
handler as Lambda delivers them in the cloud.

The records have the AWS shape (`messageId`, `receiptHandle`, `body`, `attributes`,
`messageAttributes`, `md5OfBody`, `eventSource`, `eventSourceARN`, `awsRegion`), a batch holds
up to the batch size the app declares for the handler (`SQS_BATCH_SIZE`), and the handler's
`batchItemFailures` are honoured as with `ReportBatchItemFailures`: the reported records are
left on the queue (the consumer has already set their retry backoff) and the rest are deleted.
A handler that raises fails the whole batch, which comes back after its visibility timeout.
So `make run` exercises the handler the cloud runs, not only the code behind it.
"""

from __future__ import annotations

import logging
import sys
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from processor.entrypoints.consumer import BatchOutcome, QueueMessage

log = logging.getLogger(__name__)
CHALICE_APP_DIR = Path(__file__).resolve().parents[2] / "chalice_app"
FUNCTION = "process_orders"


@dataclass(frozen=True)
class LambdaContext:
    """The part of Lambda's context object a handler may read."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 512

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class LambdaDelivery:
    """Invokes the app's SQS handler with one received batch and sorts the outcome."""

    def __init__(self, queue_url: str, region: str) -> None:
        self.queue_url = queue_url
        self.region = region

    @cached_property
    def _app(self) -> Any:
        if str(CHALICE_APP_DIR) not in sys.path:
            sys.path.insert(0, str(CHALICE_APP_DIR))
        import app

        return app

    @property
    def batch_size(self) -> int:
        """The batch size the app declares for the handler (at most 10 per SQS receive)."""
        (config,) = [s for s in self._app.app.event_sources if s.name == FUNCTION]
        return max(1, min(10, int(config.batch_size)))

    @cached_property
    def queue_arn(self) -> str:
        from processor.adapters.aws import client

        attributes = client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]
        return str(attributes["QueueArn"])

    def event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The Lambda event for messages as `ReceiveMessage` returned them."""
        return {"Records": [self._record(m) for m in messages]}

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {
            key: value
            for key, value in (message.get("Attributes") or {}).items()
            if key
            in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
            )
        }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": attributes,
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value.get("DataType"),
                }
                for name, value in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }

    def deliver(self, messages: list[dict[str, Any]], stopping: bool) -> BatchOutcome:
        """One invocation; nothing is invoked once the process is stopping (all released)."""
        received = [QueueMessage.from_sqs(m) for m in messages]
        if stopping:
            return BatchOutcome(not_started=received)
        context = LambdaContext(FUNCTION, str(uuid.uuid4()))
        try:
            response = getattr(self._app, FUNCTION)(self.event(messages), context)
            failed_ids = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        except Exception:
            log.exception("%s failed; the whole batch will be retried", FUNCTION)
            return BatchOutcome(failed=received)
        return BatchOutcome(
            done=[m for m in received if m.message_id not in failed_ids],
            failed=[m for m in received if m.message_id in failed_ids],
        )
