"""Schemathesis against the real HTTP server, driven by the document the server publishes.

For every operation it sends generated requests, valid and invalid (its coverage phase adds
boundary values), with the API key enforced, and requires: no 5xx; every response matches
the document (status, content type, headers, body schema); invalid input is rejected; and
every rejected request (4xx) left every table exactly as it was: the same rows with the same
contents (a digest of every row of every table, not only their counts).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from processor.api.openapi import render
from tests.reliability.chaos.report import SCHEMATHESIS_MAX_EXAMPLES
from tests.reliability.conftest import table_digests

API_KEY = "contract-key"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


@pytest.fixture(autouse=True)
def api_key_required(configure: Any) -> None:
    """The key enforced, and a webhook signing secret that generated requests cannot know:
    the webhook must refuse every one of them (400) and store nothing."""
    configure(API_KEY=API_KEY, STRIPE_WEBHOOK_SECRET="whsec_contract_never_sent")


# The document the server serves is `render()` (test_openapi proves it); loading it from the
# code keeps collection independent of a running server.
schema = schemathesis.openapi.from_dict(json.loads(render()))


@schema.parametrize()
@settings(
    max_examples=SCHEMATHESIS_MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_get_documented_answers_and_rejected_ones_change_nothing(
    case: Any, api_url: str, system: dict[str, Any]
) -> None:
    before = table_digests(system["db"])
    headers = _api_key_headers(case)
    response = case.call(base_url=api_url, headers=headers)
    case.validate_response(
        response, checks=CHECKS, headers=headers, transport_kwargs={"base_url": api_url}
    )
    if 400 <= response.status_code < 500:
        assert table_digests(system["db"]) == before, (response.status_code, response.text)


def _api_key_headers(case: Any) -> dict[str, str]:
    """The API key, unless Schemathesis made this case's headers invalid on purpose: it may
    have left the required key out, and adding it back would make the request valid, so the
    negative-data check would then blame the server for accepting it (seen as a rare
    `ST201 ... header: violates required (was x-api-key)` on a plain `GET /orders`)."""
    meta = case.meta
    header = meta.components.get(ParameterLocation.HEADER) if meta is not None else None
    if header is not None and header.mode == GenerationMode.NEGATIVE:
        return {}
    return {"x-api-key": API_KEY}
