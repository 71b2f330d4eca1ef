"""`make run`'s stack as a real subprocess: HTTP in, COMPLETED out, clean shutdown."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    payload = json.dumps(body) if body is not None else None
    conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    result = response.status, json.loads(response.read())
    conn.close()
    return result


@pytest.fixture
def local_stack(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "MOTO_PORT": "0",
        "ORDERFLOW_DATA_DIR": str(tmp_path / "local"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "processor", "local", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 90
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if line.startswith("Ready.") or time.monotonic() > deadline:
            break
    assert any(line.startswith("Ready.") for line in output), "".join(output)
    yield process, port, tmp_path / "local"
    if process.poll() is None:
        process.kill()
        process.wait()


def test_curl_order_reaches_completed_and_ctrl_c_stops_everything(local_stack):
    process, port, data_dir = local_stack
    status, created = _request(
        port,
        "POST",
        "/orders",
        {
            "customer_email": "ada@example.com",
            "customer_name": "Ada",
            "items": [{"product_name": "Widget", "quantity": 2, "unit_price": 24.99}],
        },
    )
    assert status == 201
    deadline = time.monotonic() + 90
    order: dict = {}
    while time.monotonic() < deadline:
        _, order = _request(port, "GET", f"/orders/{created['order_id']}")
        if order["status"] == "COMPLETED":
            break
        time.sleep(0.1)
    assert order["status"] == "COMPLETED"
    assert [h["status"] for h in order["status_history"]] == [
        "COMPLETED",
        "FULFILLED",
        "PAYMENT_CONFIRMED",
        "PROCESSING",
        "PENDING",
    ]
    status, listing = _request(port, "GET", "/orders?limit=1")
    assert status == 200 and listing["orders"][0]["order_id"] == created["order_id"]
    status, missing = _request(port, "GET", "/no-such-route")
    assert status == 404 and missing["error"]["code"] == "NOT_FOUND"

    postmaster = int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    assert not psutil.pid_exists(postmaster) or psutil.Process(postmaster).status() == "zombie"
