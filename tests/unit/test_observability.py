import io
import json
import logging

import pytest

from processor import metrics
from processor.observability import (
    JsonFormatter,
    emit_metric,
    external_error,
    log_context,
    mask_email,
    scrub,
)


def test_emails_are_masked_to_first_letter_and_domain():
    assert mask_email("ada.lovelace@example.com") == "a***@example.com"
    assert mask_email("nonsense") == "***"
    assert mask_email(None) == "***"


def _log_line(**extra):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.observability")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("hello %s", "world", extra=extra)
    finally:
        logger.removeHandler(handler)
    return json.loads(stream.getvalue())


def test_log_lines_are_json_with_the_correlation_context():
    with log_context(correlation_id="req-1", order_id="o-1"):
        line = _log_line(duration_ms=5)
    assert line["message"] == "hello world"
    assert line["level"] == "WARNING"
    assert (line["correlation_id"], line["order_id"], line["duration_ms"]) == ("req-1", "o-1", 5)


def test_context_ends_with_its_block():
    with log_context(correlation_id="req-2"):
        pass
    assert "correlation_id" not in _log_line()


def test_metrics_are_embedded_metric_format(capsys, monkeypatch):
    monkeypatch.delenv("METRICS_DISABLED", raising=False)
    emit_metric(metrics.ORDERS_PROCESSED, final_status="COMPLETED")
    record = json.loads(capsys.readouterr().out)
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Metrics"] == [{"Name": "OrdersProcessed", "Unit": "Count"}]
    assert set(directive["Dimensions"][0]) == {"service", "final_status"}
    assert record["OrdersProcessed"] == 1 and record["final_status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        (
            "MessageRejected: Email address is not verified. The following identities failed"
            " the check in region US-EAST-1: ada@example.com, o'brien--@example.co.uk.",
            "MessageRejected: Email address is not verified. The following identities failed"
            " the check in region US-EAST-1: a***@example.com, o***@example.co.uk.",
        ),
        (
            "card holder <x+flaky@mail.example.org> unreachable",
            "card holder <x***@mail.example.org> unreachable",
        ),
        ("handle@1 is invalid", "handle@1 is invalid"),
        ("no address at all", "no address at all"),
    ],
)
def test_scrub_masks_every_address_in_a_text_and_nothing_else(text, scrubbed):
    assert scrub(text) == scrubbed


def test_external_errors_name_their_service_masked_and_bounded():
    error = external_error("ses", "refused ada@example.com " + "x" * 600)
    assert error.startswith("ses: refused a***@example.com ") and len(error) == 500


def test_log_lines_and_their_exceptions_pass_the_scrubber():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.observability.scrub")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("provider said: ada@example.com")
        except ValueError:
            logger.exception("charge failed for %s", "ada@example.com")
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["message"] == "charge failed for a***@example.com"
    assert "ada@example.com" not in line["exception"] and "a***@example.com" in line["exception"]
