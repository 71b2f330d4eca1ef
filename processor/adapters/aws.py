"""boto3 clients, created once per process and shared (boto3 clients are thread-safe).

`AWS_ENDPOINT_URL` (honoured by boto3 itself) points them at moto locally and in tests.
Timeouts are short so that an unreachable queue delays a request by seconds, not minutes.
"""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is None:
        import boto3
        from botocore.config import Config

        with _lock:
            found = _clients.get(service)
            if found is None:
                found = boto3.client(
                    service,
                    config=Config(
                        connect_timeout=2,
                        read_timeout=25,
                        retries={"max_attempts": 2, "mode": "standard"},
                        # One client serves every thread of a process (the local system: API
                        # handler threads plus consumers); beyond the pool each call opens and
                        # drops a connection of its own (urllib3 discards the extra ones).
                        max_pool_connections=64,
                    ),
                )
                _clients[service] = found
    return found


def reset_clients() -> None:
    """Drop cached clients so new endpoint settings take effect (tests, local runner)."""
    with _lock:
        _clients.clear()
