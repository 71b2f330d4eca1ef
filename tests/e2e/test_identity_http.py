"""AUTH=jwt against the real local system: `make run AUTH=jwt API_KEY=...` in its own process
group, every order route called over HTTP by every kind of caller (issue 24's matrix): the
owner, another customer, the operator key, an admin token, and a dozen forged or wrong tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from processor.devstack import issuer as local_issuer
from processor.devstack.local import free_port
from tests.e2e.test_local_stack import VENV_BIN, _make
from tests.reliability.test_api_docs import browser  # noqa: F401 (the headless Chromium fixture)

OPERATOR_KEY = "op-key-for-tests"
RUN = uuid.uuid4().hex[:8]
OWNER, OTHER, ADMIN = (f"{name}-{RUN}@example.com" for name in ("owner", "other", "admin"))


def _order(email: str) -> dict[str, Any]:
    return {
        "customer_email": email,
        "customer_name": "Ada",
        "items": [{"product_name": "Widget", "quantity": 1, "unit_price": 5}],
    }


class Api:
    def __init__(self, port: int) -> None:
        self.port = port

    def call(
        self, method: str, path: str, auth: str | None, body: Any = None, **headers: str
    ) -> tuple[int, Any, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            sent = {"Content-Type": "application/json", **headers}
            if auth is not None:
                sent["Authorization"] = auth
            conn.request(method, path, json.dumps(body) if body is not None else None, sent)
            response = conn.getresponse()
            raw = response.read()
            json_body = response.getheader("Content-Type", "").startswith("application/json")
            return response.status, json.loads(raw) if json_body else raw, dict(response.headers)
        finally:
            conn.close()


@pytest.fixture(scope="module")
def local_jwt(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Api, Path]]:
    data_dir = tmp_path_factory.mktemp("identity")
    port = free_port()
    run = _make(
        "run", data_dir, port, DATABASE_URL=database_url, AUTH="jwt",
        API_KEY=OPERATOR_KEY, PROCESSOR="none",
    )
    try:
        run.wait_ready()
        yield Api(port), data_dir
    finally:
        run.kill()


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _hs256(secret: bytes, kid: str, claims: dict[str, Any]) -> str:
    signing_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _issued(data_dir: Path) -> str:
    return str(json.loads((data_dir / "issuer" / "issuer.json").read_text())["issuer"])


def _forgeries(data_dir: Path) -> dict[str, str | None]:
    """Every credential that must be refused with 401, by name."""
    key = local_issuer.signing_key(data_dir)
    kid = local_issuer.key_id(key)
    issuer = _issued(data_dir)
    claims = local_issuer.customer_claims(OWNER)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    valid = local_issuer.sign(key, issuer, claims)
    header, _, signature = valid.split(".")
    tampered = {**claims, "iss": issuer, "sub": "someone-else", "cognito:groups": ["admins"]}
    expired = {**claims, "iat": claims["iat"] - 7200, "nbf": claims["nbf"] - 7200,
               "exp": int(time.time()) - 3600}
    return {
        "no credentials": None,
        "x-api-key value as a bearer": _bearer(OPERATOR_KEY),
        "wrong operator key": f"ApiKey {OPERATOR_KEY}x",
        "expired token": _bearer(local_issuer.sign(key, issuer, expired)),
        "not yet valid token": _bearer(local_issuer.sign(
            key, issuer, {**claims, "nbf": int(time.time()) + 3600})),
        "another issuer": _bearer(local_issuer.sign(key, "http://127.0.0.1:1", claims)),
        "another audience": _bearer(local_issuer.sign(key, issuer, {**claims, "aud": "other-app"})),
        "unknown kid": _bearer(local_issuer.sign(key, issuer, claims, kid="unknown-kid")),
        "alg none": _bearer(_unsigned({"alg": "none", "kid": kid}, {**claims, "iss": issuer})
                            + "."),
        "HS256 with the public key": _bearer(_hs256(public_pem, kid, {**claims, "iss": issuer})),
        "HS256 with a guessed secret": _bearer(_hs256(b"secret", kid, {**claims, "iss": issuer})),
        "tampered payload": _bearer(f"{header}.{_b64(json.dumps(tampered).encode())}.{signature}"),
        "not a JWT": _bearer("not-a-token"),
        "basic scheme": "Basic dXNlcjpwYXNz",
    }


def test_every_order_route_scopes_customers_to_their_own_orders_and_admits_operators(
    local_jwt: tuple[Api, Path],
) -> None:
    api, data_dir = local_jwt
    key, issuer = local_issuer.signing_key(data_dir), _issued(data_dir)
    owner = _bearer(local_issuer.sign(key, issuer, local_issuer.customer_claims(OWNER)))
    other = _bearer(local_issuer.sign(key, issuer, local_issuer.customer_claims(OTHER)))
    admin = _bearer(local_issuer.sign(key, issuer, local_issuer.customer_claims(ADMIN, True)))
    operator = f"ApiKey {OPERATOR_KEY}"

    status, first, _ = api.call("POST", "/orders", owner, _order(OWNER))
    assert status == 201, first
    status, second, _ = api.call("POST", "/orders", owner, _order(OWNER))
    assert status == 201, second
    mine = {first["order_id"], second["order_id"]}
    walk_in = _order(f"walk-in-{RUN}@example.com")
    status, by_operator, _ = api.call("POST", "/orders", operator, walk_in)
    assert status == 201, by_operator

    # Placing an order in someone else's name is refused, and nothing is written.
    status, body, _ = api.call("POST", "/orders", other, _order(OWNER))
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")

    # Lists: the owner sees exactly their orders; no filter widens another customer's list.
    status, listed, _ = api.call("GET", "/orders?limit=100", owner)
    assert status == 200 and {o["order_id"] for o in listed["orders"]} == mine
    for query in ("", f"?customer_email={OWNER}", "?status=PENDING"):
        status, listed, _ = api.call("GET", f"/orders{query}", other)
        assert status == 200 and listed["orders"] == [], query
    for caller in (operator, admin):
        status, listed, _ = api.call("GET", f"/orders?customer_email={OWNER}", caller)
        assert status == 200 and {o["order_id"] for o in listed["orders"]} == mine

    # Another customer's order answers exactly like an unknown one, on every route.
    unknown = str(uuid.uuid4())
    for method, template, body in (("GET", "/orders/{}", None), ("POST", "/orders/{}/cancel", None),
                                   ("POST", "/orders/{}/refunds", {})):
        status, theirs, _ = api.call(method, template.format(first["order_id"]), other, body)
        status_unknown, none, _ = api.call(method, template.format(unknown), other, body)
        assert (status, status_unknown) == (404, 404), template
        assert theirs["error"]["code"] == none["error"]["code"] == "ORDER_NOT_FOUND"
    # Refunds are the merchant's: the owner is refused, the operator reaches the refund rules.
    status, body, _ = api.call("POST", f"/orders/{first['order_id']}/refunds", owner, {})
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    status, body, _ = api.call("POST", f"/orders/{first['order_id']}/refunds", operator, {})
    assert (status, body["error"]["code"]) == (409, "INVALID_ORDER_STATE")  # nothing captured
    status, still, _ = api.call("GET", f"/orders/{first['order_id']}", owner)
    assert (status, still["status"]) == (200, "PENDING")

    # The owner, an admin and the operator read and cancel.
    assert api.call("GET", f"/orders/{by_operator['order_id']}", admin)[0] == 200
    assert api.call("GET", f"/orders/{first['order_id']}", operator)[0] == 200
    status, cancelled, _ = api.call("POST", f"/orders/{first['order_id']}/cancel", owner)
    assert (status, cancelled["status"]) == (200, "CANCELLED")
    status, cancelled, _ = api.call("POST", f"/orders/{second['order_id']}/cancel", admin)
    assert (status, cancelled["status"]) == (200, "CANCELLED")
    status, cancelled, _ = api.call("POST", f"/orders/{by_operator['order_id']}/cancel", operator)
    assert (status, cancelled["status"]) == (200, "CANCELLED")


def test_forged_expired_and_foreign_tokens_get_401_with_the_json_error_and_a_challenge(
    local_jwt: tuple[Api, Path],
) -> None:
    api, data_dir = local_jwt
    some_order = f"/orders/{uuid.uuid4()}"
    routes = (("POST", "/orders", _order(OWNER)), ("GET", "/orders", None),
              ("GET", some_order, None), ("POST", f"{some_order}/cancel", None),
              ("POST", f"{some_order}/refunds", {}))
    refused = []
    for name, credential in _forgeries(data_dir).items():
        for method, path, body in routes:
            status, answer, headers = api.call(method, path, credential, body)
            if (
                status != 401
                or answer.get("error", {}).get("code") != "UNAUTHORIZED"
                or not headers.get("WWW-Authenticate", "").startswith("Bearer")
            ):
                refused.append((name, method, path, status, answer))
    assert refused == []
    status, listed, _ = api.call("GET", "/orders", f"ApiKey {OPERATOR_KEY}")
    assert status == 200 and all(o["customer_email"] != "someone-else" for o in listed["orders"])


def test_a_customer_token_without_a_verified_email_reads_but_cannot_order(
    local_jwt: tuple[Api, Path],
) -> None:
    api, data_dir = local_jwt
    key, issuer = local_issuer.signing_key(data_dir), _issued(data_dir)
    claims = {**local_issuer.customer_claims(OWNER), "email_verified": False}
    token = _bearer(local_issuer.sign(key, issuer, claims))
    status, body, _ = api.call("POST", "/orders", token, _order(OWNER))
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
    assert api.call("GET", "/orders", token)[0] == 200


def test_the_served_document_declares_the_bearer_scheme_and_stays_public(
    local_jwt: tuple[Api, Path],
) -> None:
    api, _ = local_jwt
    status, served, _ = api.call("GET", "/openapi.json", None)
    assert status == 200
    assert served["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert served["security"] == [{"BearerAuth": []}]
    assert api.call("GET", "/docs", None)[0] == 200


def test_admin_token_command_prints_a_token_the_running_system_accepts(
    local_jwt: tuple[Api, Path],
) -> None:
    api, data_dir = local_jwt
    printed = subprocess.run(
        [f"{VENV_BIN}/python", "-m", "processor", "admin", "token", "--email", OWNER],
        capture_output=True, text=True, check=True, timeout=60,
        env={"ORDERFLOW_DATA_DIR": str(data_dir), "PATH": VENV_BIN},
    ).stdout.strip()
    status, listed, _ = api.call("GET", "/orders", _bearer(printed))
    assert status == 200
    assert all(o["customer_email"] == OWNER for o in listed["orders"])


def test_docs_authorize_takes_a_bearer_token_and_try_it_out_places_the_customers_order(
    local_jwt: tuple[Api, Path], browser: Any,  # noqa: F811 (the imported fixture)
) -> None:
    """/docs in headless Chromium: Swagger UI's Authorize dialog asks for the bearer token,
    and "Try it out" then places an order as that customer (the example body's email)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    api, data_dir = local_jwt
    email = "ada@example.com"  # the schema's example, which Swagger UI fills in
    token = local_issuer.sign(local_issuer.signing_key(data_dir), _issued(data_dir),
                              local_issuer.customer_claims(email))
    wait = WebDriverWait(browser, 30)
    browser.get(f"http://127.0.0.1:{api.port}/docs")
    clickable = ec.element_to_be_clickable
    wait.until(clickable((By.CSS_SELECTOR, ".auth-wrapper .authorize"))).click()
    wait.until(clickable((By.ID, "auth-bearer-value"))).send_keys(token)
    browser.find_element(By.CSS_SELECTOR, ".modal-btn.auth.authorize").click()
    wait.until(clickable((By.CSS_SELECTOR, ".modal-btn.btn-done"))).click()
    create = "#operations-orders-createOrder"
    browser.find_element(By.CSS_SELECTOR, f"{create} .opblock-summary-control").click()
    wait.until(clickable((By.CSS_SELECTOR, f"{create} .try-out__btn"))).click()
    wait.until(clickable((By.CSS_SELECTOR, f"{create} .execute"))).click()
    status = wait.until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, f"{create} .live-responses-table tbody .response-col_status")))
    assert status.text.strip() == "201", browser.find_element(By.CSS_SELECTOR, create).text
    listed = api.call("GET", "/orders", _bearer(token))[1]["orders"]
    assert [o["customer_email"] for o in listed] == [email]
