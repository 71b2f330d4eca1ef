"""Schemathesis as a third party runs it: the CLI, every check and every phase, against the real
HTTP server and the document that server publishes at /openapi.json, once with the API key
enforced and once without.

Nothing is excluded but two warnings about the test data (below), and one expectation is
widened, for the webhook only: no generated request can carry a valid `Stripe-Signature` (an
HMAC of its own body under a secret Schemathesis does not know), so there a schema-valid
request is rightly refused with 400, and the warning that the operation "mostly rejected
generated data" is expected (schemathesis.toml, written beside the run). The run is bounded
(examples per operation, one worker) and seeded, so a failure reproduces with the command it
prints; change the seed to explore further.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from processor.config import settings
from tests.reliability.chaos.client import http_call

API_KEY = "schemathesis-key"
# Every warning Schemathesis has but two that describe the test data, not the API:
# `missing_test_data`: a refund needs a captured payment, which only the processor produces (no
# API request can), so POST /orders/{id}/refunds never answers 201 here; `low_valid_rate`: the
# coverage phase sends one variant of the order body per optional field under one generated
# Idempotency-Key, and the API rightly answers all but the first 409. Every answer is still
# checked against the document.
WARNINGS = (
    "missing_auth,base_url_mismatch,validation_mismatch,missing_deserializer,"
    "unused_openapi_auth,unsupported_regex,method_not_allowed,constants_extraction,"
    "unmatched_filter,unresolvable_reference,rate_limited,dictionary_mismatch,timeout_units"
)
MAX_EXAMPLES = 25
SEED = 20261201
# One CLI run's bound; each test's pytest timeout (default 120 s) sits above it, so a hung run
# fails with the message below, not pytest's kill.
RUN_SECONDS = 300
pytestmark = pytest.mark.timeout(RUN_SECONDS + 60)
WEBHOOK_EXPECTATIONS = """
[[operations]]
include-path = "/webhooks/stripe"
checks.positive_data_acceptance.expected-statuses = ["200", "400"]
warnings = false
"""


def run_schemathesis(
    api_url: str, tmp_path: Path, *headers: str
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{api_url}/openapi.json",
        "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
        "--request-timeout", "10", "--warnings", WARNINGS,
    ]
    for header in headers:
        command += ["--header", header]
    (tmp_path / "schemathesis.toml").write_text(WEBHOOK_EXPECTATIONS)
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=RUN_SECONDS,
                              check=False, cwd=tmp_path)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"schemathesis (seed {SEED}) did not finish within {RUN_SECONDS} s:"
                    f"\n{str(expired.stdout)[-3000:]}")


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-15000:]
    assert "No issues found" in output, output[-15000:]
    # Every documented operation was exercised, not just loaded.
    assert "Tested: 8" in output, output[-15000:]


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signing secret Schemathesis cannot know: every webhook request it makes is refused."""
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_schemathesis_never_sent")
    settings.cache_clear()


@pytest.fixture
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("API_KEY", raising=False)
    monkeypatch.delenv("API_KEY_REQUIRED", raising=False)
    settings.cache_clear()


def test_schemathesis_finds_nothing_without_an_api_key(
    api_url: str, system: dict[str, Any], no_api_key: None, tmp_path: Path
) -> None:
    document = http_call(api_url, "GET", "/openapi.json")[1]
    assert "security" not in document
    assert "securitySchemes" not in document["components"]
    assert_clean(run_schemathesis(api_url, tmp_path))


def test_schemathesis_finds_nothing_with_the_api_key_enforced(
    api_url: str, system: dict[str, Any], configure: Any, tmp_path: Path
) -> None:
    configure(API_KEY=API_KEY)
    document = http_call(api_url, "GET", "/openapi.json")[1]
    assert document["security"] == [{"ApiKey": []}]
    assert_clean(run_schemathesis(api_url, tmp_path, f"x-api-key: {API_KEY}"))
