"""Autoreload of the local system: a saved change to product code takes effect in the API and
the processor within seconds, and messages in flight during a reload are neither lost nor
processed twice. Runs on a copy of the product code (PYTHONPATH wins over the editable
install), so the tests never edit the repository."""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from processor.devstack.local import free_port
from tests.e2e.test_local_stack import ORDER, Group, _answers, _busy, _request, _statuses
from tests.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
RELOADED = re.compile(r"^reloaded in ([0-9.]+) s$")


def _copy(tmp_path: Path) -> Path:
    """A copy of the product code, which PYTHONPATH makes the one imported."""
    source = tmp_path / "src"
    for package in ("processor", "db", "chalice_app"):
        shutil.copytree(REPO / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "vendor"))
    return source


def _environment(tmp_path: Path, source: Path, database_url: str) -> dict[str, str]:
    env = {
        **os.environ, "PYTHONPATH": str(source), "PYTHONUNBUFFERED": "1", "MOTO_PORT": "0",
        "ORDERFLOW_DATA_DIR": str(tmp_path / "local"), "DATABASE_URL": database_url,
        "PAYMENT_LATENCY_MS": "150",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    return env


@pytest.fixture
def local(tmp_path: Path, database_url: str, db: Any) -> Iterator[tuple[Path, int, Group]]:
    """`python -m processor local` serving a copy of the product code; (copy, port, group)."""
    source = _copy(tmp_path)
    port = free_port()
    group = Group([sys.executable, "-m", "processor", "local", "--port", str(port)],
                  _environment(tmp_path, source, database_url), cwd=source)
    try:
        group.wait_ready()
        yield source, port, group
    finally:
        group.kill()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new))


def _reloads(group: Group) -> list[float]:
    return [float(m.group(1)) for line in group.lines if (m := RELOADED.match(line))]


def test_a_saved_change_to_processor_code_reaches_the_api_and_the_processor_within_seconds(
    local,
):
    source, port, group = local
    saved = time.monotonic()
    _edit(source / "processor" / "api" / "views.py", '"Order created"', '"Order placed"')
    _edit(source / "processor" / "adapters" / "payments" / "simulator.py",
          '"card_declined"', '"card_refused"')
    wait_until(lambda: _reloads(group), timeout=20, what="the reload")

    status, created = _request(port, "POST", "/orders",
                               {**ORDER, "customer_email": "ada+decline@example.com"})
    assert status == 201, created

    def history() -> list[str]:
        order = _request(port, "GET", f"/orders/{created['order_id']}")[1]
        return [h["message"] for h in order["status_history"]]

    wait_until(lambda: "Payment declined: card_refused" in history(), timeout=20,
               what="the processor's new decline reason")
    assert history()[-1] == "Order placed"  # the API's new wording
    took = time.monotonic() - saved
    print(f"edit to effect: {took:.1f} s, reload {_reloads(group)[0]:.1f} s")
    assert took < 20, group.output


def test_orders_in_flight_during_a_reload_all_complete_once(local, db):
    source, port, group = local
    for _ in range(12):
        assert _request(port, "POST", "/orders", ORDER)[0] == 201
    wait_until(lambda: _busy(db), timeout=30, what="some orders done, others waiting or in flight")
    (source / "processor" / "processing" / "service.py").touch()
    wait_until(lambda: _reloads(group), timeout=20, what="the reload")
    # A message lost in the reload would wait out its 60 s visibility timeout: 30 s is less.
    wait_until(lambda: set(_statuses(db)) == {"COMPLETED"}, timeout=30,
               what="every order to complete after the reload")
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM order_status_history")
        assert cur.fetchone()[0] == 12 * 5  # each step once


def test_under_chalice_local_a_change_to_processor_code_reaches_the_api(tmp_path, database_url):
    """`make services` prints `chalice local` under watchfiles: its own reloader watches
    chalice_app/ only, this one processor/ and db/ too."""
    from tests.e2e.test_local_stack import _block

    source = _copy(tmp_path)
    port = free_port()
    services = Group([sys.executable, "-m", "processor", "local", "--services-only",
                      "--processor", "none", "--port", str(port)],
                     _environment(tmp_path, source, database_url), cwd=source)
    chalice = None
    try:
        directory, script = _block(services.wait_ready(), "Serve the API with chalice local")
        env = {**_environment(tmp_path, source, database_url), "PYTHONPATH": str(source)}
        env.pop("DATABASE_URL")  # the printed exports set it
        chalice = Group(["bash", "-ec", script], env, cwd=directory)
        wait_until(lambda: _answers(port) or chalice.process.poll() is not None, timeout=60)
        status, created = _request(port, "POST", "/orders", ORDER)
        assert status == 201, created

        def first_entry() -> str:
            try:
                order = _request(port, "GET", f"/orders/{created['order_id']}")[1]
            except OSError:  # restarting
                return ""
            return str(order["status_history"][-1]["message"])

        assert first_entry() == "Order created"
        _edit(source / "processor" / "api" / "views.py", '"Order created"', '"Order placed"')
        wait_until(lambda: first_entry() == "Order placed", timeout=30,
                   what="chalice local to serve the edited processor module")
    finally:
        if chalice is not None:
            chalice.kill()
        services.kill()
