"""`make run` and `make services` as a developer uses them: each in its own process group (as a
terminal runs it), the commands their banners print run verbatim in a shell, stopped by the
signals a terminal sends (twice: the terminal signals the group and make forwards), and
restarted after a SIGKILL."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from processor.devstack.local import free_port
from tests.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = str(REPO / ".venv" / "bin")
STOP_SECONDS = 10
ORDER = {
    "customer_email": "ada@example.com",
    "customer_name": "Ada",
    "items": [{"product_name": "Widget", "quantity": 2, "unit_price": 24.99}],
}


def _request(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = json.dumps(body) if body is not None else None
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def _answers(port: int) -> bool:
    try:
        return _request(port, "GET", "/orders?limit=1")[0] == 200
    except OSError:
        return False


class Group:
    """A command in its own session, its output drained by a thread (so it never blocks)."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path = REPO) -> None:
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self) -> list[str]:
        wait_until(
            lambda: (
                any(line.startswith("Ready.") for line in self.lines)
                or self.process.poll() is not None
            ),
            timeout=90,
            what="the banner",
        )
        assert self.process.poll() is None, self.output
        return list(self.lines)

    def members(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) == self.process.pid:
                    found.append(proc)
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        return found

    def signal_twice(self, signum: int) -> float:
        """Signal the whole group twice in a row; seconds until every member has exited."""
        started = time.monotonic()
        os.killpg(self.process.pid, signum)
        os.killpg(self.process.pid, signum)
        self.process.wait(timeout=30)
        wait_until(lambda: not self.members(), timeout=30, what="every member to exit")
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _make(target: str, data_dir: Path, port: int, **env: str) -> Group:
    environment = {
        **os.environ,
        "MOTO_PORT": "0",
        "ORDERFLOW_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    if "DATABASE_URL" not in env:
        environment.pop("DATABASE_URL", None)
    environment.pop("AWS_ENDPOINT_URL", None)
    return Group(["make", "-s", target, f"PORT={port}"], environment)


def _block(banner: list[str], header: str) -> tuple[Path, str]:
    """The commands under the banner line starting with `header` (`... from DIR, run`), as a
    shell script, and the directory to run them from."""
    (start,) = [n for n, line in enumerate(banner) if line.startswith(header)]
    directory = Path(banner[start].rsplit(" from ", 1)[1].removesuffix(", run"))
    commands = []
    for line in banner[start + 1 :]:
        if not line.strip():
            break
        commands.append(line.removeprefix("  "))
    return directory, "\n".join(commands)


def _shell(script: str, cwd: Path, **kwargs: Any) -> Any:
    """A plain shell: the venv is neither activated nor on PATH, so only what the script does
    counts (as in a new terminal)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "DATABASE_URL")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != VENV_BIN)
    return subprocess.run(
        ["bash", "-ec", script], cwd=cwd, env=env, capture_output=True, text=True, **kwargs
    )


def _postmaster(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _emulators(group: Group) -> list[int]:
    """Pids of the moto processes the group's members started (in their own sessions)."""
    return [
        proc.pid
        for proc in psutil.process_iter(["cmdline"])
        if "processor.devstack.emulator" in (proc.info["cmdline"] or [])
        and any(str(member.pid) in proc.info["cmdline"] for member in group.members())
    ]


def _handles(data_dir: Path) -> list[int]:
    return json.loads((data_dir / "pgdata" / ".handle_pids.json").read_text())


def _assert_stopped(data_dir: Path, postmaster: int, emulators: list[int]) -> None:
    wait_until(lambda: not _running(postmaster), timeout=5, what="PostgreSQL to stop")
    assert not any(_running(pid) for pid in emulators)
    assert _handles(data_dir) == []


@pytest.fixture
def stacks(tmp_path: Path) -> Iterator[list[Group]]:
    """The groups a test starts; killed afterwards, with any PostgreSQL a failure left."""
    started: list[Group] = []
    yield started
    for group in started:
        group.kill()
    for pid_file in tmp_path.glob("*/pgdata/postmaster.pid"):
        pid = int(pid_file.read_text().split()[0])
        if _running(pid):
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown


def test_make_run_prints_commands_that_work_verbatim_and_two_ctrl_c_stop_it_all(tmp_path, stacks):
    port = free_port()
    stack = _make("run", tmp_path / "local", port)
    stacks.append(stack)
    banner = stack.wait_ready()

    # The "Try:" commands, as printed.
    start = banner.index("Try:")
    (end,) = [n for n, line in enumerate(banner) if line.endswith("/orders/<order_id>")]
    create, get = "\n".join(banner[start + 1 : end]), banner[end].strip()
    created = json.loads(_shell(create, REPO, check=True).stdout)
    order_id = created["order_id"]
    wait_until(
        lambda: (
            json.loads(_shell(get.replace("<order_id>", order_id), REPO).stdout or "{}").get(
                "status"
            )
            == "COMPLETED"
        ),
        timeout=30,
        what="the order to complete",
    )
    order = _request(port, "GET", f"/orders/{order_id}")[1]
    assert [h["message"] for h in order["status_history"]] == [
        "Order completed",
        "Order has been fulfilled",
        "Payment processed successfully",
        "Order is being processed",
        "Order created",
    ]
    assert _request(port, "GET", "/no-such-route")[1]["error"]["code"] == "NOT_FOUND"

    # The admin CLI block, as printed, in a new shell.
    directory, admin = _block(banner, "Admin CLI against this stack")
    result = _shell(admin.replace("<order_id>", order_id), directory)
    assert result.returncode == 0, result.stderr
    assert order_id in result.stdout and "COMPLETED" in result.stdout
    assert "ada@example.com" in result.stdout  # `admin emails`: what moto recorded

    postmaster, emulators = _postmaster(tmp_path / "local"), _emulators(stack)
    assert emulators
    assert stack.signal_twice(signal.SIGINT) < STOP_SECONDS, stack.output
    _assert_stopped(tmp_path / "local", postmaster, emulators)


def test_make_services_and_the_printed_chalice_local_commands_are_the_whole_system(
    tmp_path, stacks
):
    port = free_port()
    services = _make("services", tmp_path / "local", port)
    stacks.append(services)
    directory, script = _block(services.wait_ready(), "Serve the API with chalice local")
    assert script.splitlines()[-1] == f"cd chalice_app && chalice local --port {port}"

    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "DATABASE_URL")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != VENV_BIN)
    chalice = Group(["bash", "-ec", script], env, cwd=directory)
    stacks.append(chalice)
    wait_until(lambda: _answers(port) or chalice.process.poll() is not None, timeout=60)
    assert chalice.process.poll() is None, chalice.output

    status, created = _request(port, "POST", "/orders", ORDER)
    assert status == 201, created
    wait_until(
        lambda: _request(port, "GET", f"/orders/{created['order_id']}")[1]["status"] == "COMPLETED",
        timeout=30,
        what="the processor in `make services` to complete the order",
    )

    postmaster, emulators = _postmaster(tmp_path / "local"), _emulators(services)
    assert chalice.signal_twice(signal.SIGTERM) < STOP_SECONDS, chalice.output
    assert services.signal_twice(signal.SIGTERM) < STOP_SECONDS, services.output
    _assert_stopped(tmp_path / "local", postmaster, emulators)


@pytest.mark.parametrize("processor", ["lambda", "worker"])
def test_two_sigterms_under_load_finish_or_release_every_message_in_flight(
    tmp_path, stacks, db, database_url, processor
):
    port = free_port()
    stack = _make(
        "run",
        tmp_path / "local",
        port,
        DATABASE_URL=database_url,
        PROCESSOR=processor,
        PAYMENT_LATENCY_MS="150",
    )
    stacks.append(stack)
    stack.wait_ready()
    for _ in range(16):
        assert _request(port, "POST", "/orders", ORDER)[0] == 201

    wait_until(lambda: _busy(db), timeout=30, what="some orders done, others waiting or in flight")
    assert stack.signal_twice(signal.SIGTERM) < STOP_SECONDS, stack.output

    # Every order either finished or was never started: nothing was cut off mid-way.
    assert set(_statuses(db)) <= {"COMPLETED", "PENDING"}, stack.output
    assert "stopped in" in stack.output


def test_two_sigints_under_load_stop_make_services_and_its_processor(
    tmp_path, stacks, db, database_url, monkeypatch
):
    from db.connection import reset_dsn
    from processor.adapters.aws import reset_clients
    from processor.config import settings
    from processor.orders import service as order_service
    from tests.helpers import order_request

    port = free_port()
    stack = _make(
        "services", tmp_path / "local", port, DATABASE_URL=database_url, PAYMENT_LATENCY_MS="150"
    )
    stacks.append(stack)
    _, script = _block(stack.wait_ready(), "Serve the API with chalice local")
    exports = [line.removeprefix("export ") for line in script.splitlines() if "export " in line]
    try:
        # No API here (that is chalice local's job): this process creates the orders, pointed
        # at the services by the printed exports.
        for key, value in (line.split("=", 1) for line in exports):
            monkeypatch.setenv(key, value.strip("'"))
        settings.cache_clear()
        reset_clients()
        reset_dsn()
        for n in range(16):
            order_service.create_order(order_request(f"customer{n}@example.com"))
        wait_until(lambda: _busy(db), timeout=30, what="the processor to be part-way through")
        assert stack.signal_twice(signal.SIGINT) < STOP_SECONDS, stack.output
    finally:
        monkeypatch.undo()
        settings.cache_clear()
        reset_clients()
        reset_dsn()
    assert set(_statuses(db)) <= {"COMPLETED", "PENDING"}, stack.output


def _statuses(db: Any) -> list[str]:
    with db.cursor() as cur:
        cur.execute("SELECT status FROM orders")
        return [row[0] for row in cur.fetchall()]


def _busy(db: Any) -> bool:
    """Some orders completed and some not: the processor is mid-way through the work."""
    found = set(_statuses(db))
    return "COMPLETED" in found and found != {"COMPLETED"}


def test_after_a_sigkill_a_restart_works_and_its_stop_is_clean(tmp_path, stacks):
    port, data_dir = free_port(), tmp_path / "local"
    killed = _make("run", data_dir, port)
    stacks.append(killed)
    killed.wait_ready()
    postmaster, emulators = _postmaster(data_dir), _emulators(killed)
    (python,) = [p.pid for p in killed.members() if "processor" in " ".join(p.cmdline())]

    killed.kill()
    assert _running(postmaster)  # its own session: the SIGKILL did not reach it
    assert _handles(data_dir) == [python]  # the dead pid that would keep it running forever
    wait_until(lambda: not any(_running(pid) for pid in emulators), what="moto to exit too")

    restarted = _make("run", data_dir, port)
    stacks.append(restarted)
    restarted.wait_ready()
    status, created = _request(port, "POST", "/orders", ORDER)
    assert status == 201
    wait_until(
        lambda: _request(port, "GET", f"/orders/{created['order_id']}")[1]["status"] == "COMPLETED",
        timeout=30,
        what="the restarted system to complete an order",
    )
    postmaster, emulators = _postmaster(data_dir), _emulators(restarted)
    assert restarted.signal_twice(signal.SIGINT) < STOP_SECONDS, restarted.output
    _assert_stopped(data_dir, postmaster, emulators)


def test_make_run_with_stripe_completes_an_order_with_one_captured_intent_in_localstripe(
    tmp_path, stacks
):
    port, stripe_port = free_port(), free_port()
    stack = _make(
        "run", tmp_path / "local", port, PAYMENT_PROVIDER="stripe", STRIPE_PORT=str(stripe_port)
    )
    stacks.append(stack)
    banner = stack.wait_ready()
    assert f"  export STRIPE_API_BASE='http://127.0.0.1:{stripe_port}'" in banner
    assert not any("sk_test" in line for line in banner)  # the key is in a (moto) secret

    status, body = _request(port, "POST", "/orders", ORDER)
    assert status == 400 and body["error"]["details"][0]["field"] == "payment_method"
    status, created = _request(port, "POST", "/orders", {**ORDER, "payment_method": "pm_card_visa"})
    assert status == 201
    order_id = created["order_id"]
    wait_until(
        lambda: _request(port, "GET", f"/orders/{order_id}")[1]["status"] == "COMPLETED",
        timeout=30,
        what="the order to complete",
    )
    payment = _request(port, "GET", f"/orders/{order_id}")[1]["payment"]
    assert payment["provider"] == "stripe"
    intent = _stripe_get(stripe_port, f"/v1/payment_intents/{payment['provider_reference']}")
    assert (intent["status"], intent["amount"], intent["currency"]) == ("succeeded", 4998, "usd")
    assert intent["metadata"] == {"order_id": order_id}

    localstripe = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "processor.entrypoints.localstripe" in (p.info["cmdline"] or [])
        and str(stripe_port) in p.info["cmdline"]
    ]
    assert len(localstripe) == 1
    assert stack.signal_twice(signal.SIGINT) < STOP_SECONDS, stack.output
    wait_until(lambda: not _running(localstripe[0].pid), timeout=5, what="localstripe to stop")


def _stripe_get(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": "Bearer sk_test_e2e"})
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()
