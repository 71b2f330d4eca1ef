import io
import json
import logging

from processor import metrics
from processor.observability import JsonFormatter, emit_metric, log_context, mask_email


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
