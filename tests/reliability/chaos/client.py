"""The API as a client sees it: one request at a time, and the retries a good client makes."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from processor.jsonutil import loads

# What a request that got no HTTP answer at all raises (refused, reset, cut mid-response).
NO_ANSWER = (OSError, http.client.HTTPException)


def http_call(
    base_url: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> tuple[int, Any, dict[str, str]]:
    """One request on a fresh connection: (status, JSON body or raw bytes, lower-case headers).

    A fresh connection each time, so a restarted or cut-off server is seen at once."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        payload = body if body is None or isinstance(body, str | bytes) else json.dumps(body)
        sent = dict(headers or {})
        if payload is not None:
            sent.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=payload, headers=sent)
        response = conn.getresponse()
        raw = response.read()
        received = {k.lower(): v for k, v in response.getheaders()}
        data: Any = raw
        if raw and received.get("content-type", "").startswith("application/json"):
            data = loads(raw)
        return response.status, data, received
    finally:
        conn.close()


def order_body(tag: str, items: int = 2, email: str = "chaos@example.com") -> dict[str, Any]:
    """A valid order; `tag` (the customer name) identifies one logical order in the database."""
    return {
        "customer_email": email,
        "customer_name": tag,
        "items": [
            {"product_name": f"Item {n}", "quantity": n + 1, "unit_price": round(9.99 + n, 2)}
            for n in range(items)
        ],
    }


def good_503(data: Any, headers: dict[str, str]) -> bool:
    """The documented outage answer: JSON `SERVICE_UNAVAILABLE` with a numeric Retry-After."""
    return (
        isinstance(data, dict)
        and data.get("error", {}).get("code") == "SERVICE_UNAVAILABLE"
        and headers.get("retry-after", "").isdigit()
        and headers.get("content-type", "").startswith("application/json")
    )


@dataclass
class Submission:
    """How one order's submission went: its id once accepted, and what it took."""

    order_id: str | None = None
    attempts: int = 0
    unavailable: int = 0
    connection_errors: int = 0
    bad: list[str] = field(default_factory=list)


def submit(
    api_url: str,
    body: dict[str, Any],
    key: str,
    give_up_at: float,
    max_backoff: float = 0.2,
    on_503: Callable[[], None] = lambda: None,
) -> Submission:
    """What a well-behaved client does: retry with the same Idempotency-Key until 201,
    honouring Retry-After (capped, to keep the run short)."""
    result = Submission()
    while time.monotonic() < give_up_at:
        result.attempts += 1
        try:
            status, data, headers = http_call(
                api_url, "POST", "/orders", body, {"Idempotency-Key": key}
            )
        except NO_ANSWER:
            result.connection_errors += 1
            time.sleep(0.05)  # client back-off before the retry
            continue
        if status == 201:
            result.order_id = data["order_id"]
            return result
        if status == 503:
            result.unavailable += 1
            on_503()
            if not good_503(data, headers):
                result.bad.append(f"malformed 503: {headers} {data!r}"[:300])
            time.sleep(min(float(headers.get("retry-after", 1)), max_backoff))
            continue
        result.bad.append(f"POST /orders answered {status}: {data!r}"[:300])
        return result
    return result


def place_orders(api_url: str, prefix: str, count: int, give_up_at: float) -> dict[str, str]:
    """`count` orders tagged `<prefix>-<n>` (the tag is also the Idempotency-Key), placed one
    after another with `submit`: tag -> order id, "" for an order never accepted."""
    placed: dict[str, str] = {}
    for n in range(count):
        tag = f"{prefix}-{n}"
        placed[tag] = submit(api_url, order_body(tag), tag, give_up_at).order_id or ""
    return placed
