"""Secrets Manager reads for the database credentials, with db/'s own boto3 client.

db/ imports nothing from processor/, so it keeps its own client rather than borrowing the
processor's: created on first use only (a process with `DATABASE_URL` never loads boto3),
then shared by every thread. `AWS_ENDPOINT_URL` points it at moto locally and in tests.
"""

from __future__ import annotations

import json
import threading
from typing import Any

_lock = threading.Lock()
_client: Any = None


def read_secret(secret_id: str) -> dict[str, Any]:
    """The JSON document stored in `secret_id` (the RDS-managed secret: username, password)."""
    secret: dict[str, Any] = json.loads(
        _secrets_manager().get_secret_value(SecretId=secret_id)["SecretString"]
    )
    return secret


def reset_client() -> None:
    """Drop the client so new endpoint settings take effect (tests switch endpoints)."""
    global _client
    with _lock:
        _client = None


def _secrets_manager() -> Any:
    global _client
    with _lock:
        if _client is None:
            import boto3
            from botocore.config import Config

            # Short timeouts, as for the processor's clients: an unreachable Secrets Manager
            # delays a connect by seconds, and the cached DSN is then kept.
            _client = boto3.client(
                "secretsmanager",
                config=Config(
                    connect_timeout=2,
                    read_timeout=10,
                    retries={"max_attempts": 2, "mode": "standard"},
                ),
            )
        return _client
