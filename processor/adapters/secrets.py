"""Secrets Manager strings (the webhook signing secret), read at run time and cached briefly.

The stack hands functions a secret's ARN, never its value. A value is kept for a few minutes:
long enough that a burst of webhooks costs one read, short enough that a secret rolled with
`pulumi config set --secret` and `pulumi up` (same ARN, new value) is picked up without a
redeploy of the functions.
"""

from __future__ import annotations

import threading
import time

from processor.adapters.aws import client

CACHE_SECONDS = 300.0
_lock = threading.Lock()
_cache: dict[str, tuple[float, str]] = {}


def secret_string(arn: str, now: float | None = None) -> str:
    """The secret's current string value (cached for CACHE_SECONDS per ARN)."""
    moment = time.monotonic() if now is None else now
    with _lock:
        cached = _cache.get(arn)
        if cached is not None and moment - cached[0] < CACHE_SECONDS:
            return cached[1]
    value = str(client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
    with _lock:
        _cache[arn] = (moment, value)
    return value


def forget() -> None:
    """Drop cached values (tests that change a secret behind the cache)."""
    with _lock:
        _cache.clear()
