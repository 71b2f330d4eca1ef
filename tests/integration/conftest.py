from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from processor import bootstrap
from processor.devstack import localstripe
from processor.devstack.local import free_port
from processor.jsonutil import loads
from tests.helpers import CountingProvider, invariant_violations


class Api:
    """Thin wrapper over Chalice's test client that speaks JSON and returns (status, body)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def post(
        self,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: str | bytes | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        payload = raw if raw is not None else "" if body is None else json.dumps(body, default=str)
        response = self.client.http.post(
            path, headers={"Content-Type": "application/json", **(headers or {})}, body=payload
        )
        return response.status_code, loads(response.body), response.headers

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        response = self.client.http.get(path, headers=headers or {})
        return response.status_code, loads(response.body)


@pytest.fixture
def api(system: dict[str, Any]) -> Iterator[Api]:
    from app import app

    with Client(app) as client:
        yield Api(client)


ORDER = {
    "customer_email": "ada@example.com",
    "customer_name": "Ada Lovelace",
    "items": [
        {"product_name": "Widget", "quantity": 2, "unit_price": 24.99},
        {"product_name": "Gadget", "quantity": 1, "unit_price": 75.99},
    ],
}


@pytest.fixture
def invariants_hold(system: dict[str, Any]) -> Iterator[None]:
    """After the test: the invariant checker finds nothing (see helpers)."""
    yield
    assert invariant_violations() == []


@pytest.fixture
def provider(system: dict[str, Any]) -> Iterator[CountingProvider]:
    """A payment provider that counts calls and charges, installed for the test."""
    counting = CountingProvider()
    bootstrap.set_payment_provider(counting)
    yield counting
    bootstrap.set_payment_provider(None)


@pytest.fixture(scope="module")
def emulator() -> Iterator[localstripe.LocalStripe]:
    """localstripe on a free port, one per test module that talks to Stripe."""
    running = localstripe.spawn(free_port()).wait_ready()
    yield running
    running.stop()
