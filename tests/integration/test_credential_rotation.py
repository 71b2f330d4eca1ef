"""Credential rotation and a database that is not reachable yet, on real PostgreSQL.

The credentials live in moto's Secrets Manager in the shape RDS keeps them, and the app finds
them through `DB_SECRET_ARN`, `DB_HOST`, `DB_PORT` and `DB_NAME` as in the cloud. The server
enforces them: a dedicated embedded PostgreSQL (the rest of the suite keeps its trust-auth
server) whose pg_hba.conf requires SCRAM for the app's role on its Unix socket. That server is
built without SSL; libpq ignores `sslmode=require` on a Unix socket, so the app's DSN is used
exactly as it is built for RDS.

A rotation is what RDS does to its managed master secret: `ALTER ROLE ... PASSWORD`, then
`put_secret_value`; open sessions survive a real rotation, so `pg_terminate_backend` forces
the reconnects (a failover, an idle kill, a frozen Lambda container) that then need the new
password.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from chalice.test import Client
from psycopg2.extensions import make_dsn, parse_dsn

from db.connection import database_url, get_connection, reset_dsn
from db.migrate import (
    MIGRATION_RESERVE_SECONDS,
    available_migrations,
    migrate,
    migrate_when_reachable,
)
from db.secrets import reset_client
from processor import bootstrap
from processor.adapters.aws import client
from processor.devstack.postgres import start_server, truncate_data, with_database
from processor.entrypoints.worker import WorkerOptions
from tests.helpers import invariant_violations, wait_until, worker_on_thread

ROLE = "orderflow_app"
DATABASE = "orderflow_rotation"
# RDS generates passwords with punctuation: the DSN must carry any of it.
FIRST_PASSWORD = "first p@ss:w/rd'\\"
ORDER = {
    "customer_email": "ada@example.com",
    "customer_name": "Ada Lovelace",
    "items": [{"product_name": "Widget", "quantity": 2, "unit_price": 24.99}],
}


@dataclass
class PasswordServer:
    """Embedded PostgreSQL that checks `ROLE`'s password; `admin` (trust) runs the rotation."""

    server: Any
    socket_dir: str
    port: int

    def connect_admin(self, database: str = DATABASE) -> Any:
        conn = psycopg2.connect(with_database(self.server.get_uri(), database))
        conn.autocommit = True
        return conn

    def admin(self, sql: str, *params: Any, database: str = DATABASE) -> list[tuple[Any, ...]]:
        with contextlib.closing(self.connect_admin(database)) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def app_dsn(self, password: str, database: str = DATABASE) -> str:
        return make_dsn(host=self.socket_dir, port=self.port, dbname=database, user=ROLE,
                        password=password)  # fmt: skip

    def password_required(self) -> bool:
        try:
            psycopg2.connect(make_dsn(host=self.socket_dir, port=self.port, dbname=DATABASE,
                                      user=ROLE)).close()  # fmt: skip
        except psycopg2.OperationalError as error:
            return "no password supplied" in str(error)
        return False

    def app_sessions(self) -> set[int]:
        found = self.admin("SELECT pid FROM pg_stat_activity WHERE usename = %s", ROLE)
        return {pid for (pid,) in found}

    def terminate_app_sessions(self) -> set[int]:
        """Kill every session of the app's role and wait until each has exited. (Materialized:
        the planner would otherwise push the kill below the role filter, onto every session.)"""
        killed = self.admin(
            "WITH app AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE usename = %s)"
            " SELECT pid FROM app WHERE pg_terminate_backend(pid, 5000)",
            ROLE,
        )
        return {pid for (pid,) in killed}


@pytest.fixture(scope="module")
def password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PasswordServer]:
    server = start_server(tmp_path_factory.mktemp("pg-rotation") / "data")
    info = server.get_postmaster_info()
    found = PasswordServer(server, str(info.socket_dir), info.port or 5432)
    try:
        found.admin(f"CREATE ROLE {ROLE} LOGIN PASSWORD %s", FIRST_PASSWORD, database="postgres")
        found.admin(f"CREATE DATABASE {DATABASE} OWNER {ROLE}", database="postgres")
        hba = Path(found.admin("SHOW hba_file", database="postgres")[0][0])
        hba.write_text(f"local all {ROLE} scram-sha-256\n" + hba.read_text())
        found.admin("SELECT pg_reload_conf()", database="postgres")
        wait_until(found.password_required, what="pg_hba.conf to require the password")
        migrate(found.app_dsn(FIRST_PASSWORD))
        yield found
    finally:
        server.cleanup()


@dataclass
class CloudDatabase:
    """The app's view: a secret in Secrets Manager and the server that checks it."""

    pg: PasswordServer
    secret_arn: str
    password: str = FIRST_PASSWORD
    rotations: int = 0

    def set_password(self) -> None:
        """RDS rotation step `setSecret`: the database takes a new password."""
        self.rotations += 1
        self.password = f"rotated-{self.rotations} p@ss'\\"
        self.pg.admin(f"ALTER ROLE {ROLE} PASSWORD %s", self.password)

    def publish_password(self) -> None:
        """RDS rotation step `finishSecret`: the secret's current version has it too."""
        client("secretsmanager").put_secret_value(
            SecretId=self.secret_arn,
            SecretString=json.dumps({"username": ROLE, "password": self.password}),
        )

    def statuses(self) -> list[str]:
        return [status for (status,) in self.pg.admin("SELECT status FROM orders")]


@pytest.fixture
def cloud(password_server: PasswordServer, aws: dict[str, str]) -> Iterator[CloudDatabase]:
    """The app configured as in the cloud, on a migrated, empty database."""
    password_server.admin(f"ALTER ROLE {ROLE} PASSWORD %s", FIRST_PASSWORD)
    secret = client("secretsmanager").create_secret(
        Name="rds!db-rotation",
        SecretString=json.dumps({"username": ROLE, "password": FIRST_PASSWORD}),
    )
    with pytest.MonkeyPatch.context() as env:
        env.delenv("DATABASE_URL", raising=False)
        env.setenv("DB_SECRET_ARN", secret["ARN"])
        env.setenv("DB_HOST", password_server.socket_dir)
        env.setenv("DB_PORT", str(password_server.port))
        env.setenv("DB_NAME", DATABASE)
        reset_dsn()
        with contextlib.closing(password_server.connect_admin(DATABASE)) as conn:
            truncate_data(conn)
        bootstrap.set_payment_provider(None)
        yield CloudDatabase(password_server, secret["ARN"])
    reset_dsn()


@pytest.fixture
def api() -> Iterator[Client]:
    """The Chalice app in-process, like conftest's `api` but without the session database."""
    from app import app

    with Client(app) as test_client:
        yield test_client


def _post_order(api: Client) -> int:
    response = api.http.post(
        "/orders", headers={"Content-Type": "application/json"}, body=json.dumps(ORDER)
    )
    return response.status_code


@contextlib.contextmanager
def _running_worker() -> Iterator[threading.Thread]:
    """The Fargate entry point's worker on a thread: two consumers and the outbox sweeper."""
    options = WorkerOptions(concurrency=2, wait_seconds=1, sweep_interval=0.2)
    with worker_on_thread(options, "rotation-worker") as (_worker, thread):
        yield thread


def _all_completed(cloud: CloudDatabase, expected: int) -> bool:
    statuses = cloud.statuses()
    return len(statuses) == expected and set(statuses) == {"COMPLETED"}


def _unsent_notifications(cloud: CloudDatabase) -> int:
    return cloud.pg.admin(
        "SELECT count(*) FROM outbox WHERE kind = 'notification' AND published_at IS NULL"
    )[0][0]


@pytest.mark.parametrize("prepared_statements", ["on", "off"], ids=["direct", "rds-proxy-mode"])
def test_api_and_worker_recover_from_a_rotation_without_a_restart(
    cloud: CloudDatabase,
    api: Client,
    prepared_statements: str,
    configure: Callable[..., None],
) -> None:
    # The stack sets DB_PREPARED_STATEMENTS=off with RDS Proxy; the app has no other proxy mode.
    # A notification relay the kill interrupts is the sweeper's to finish: at once, here.
    configure(DB_PREPARED_STATEMENTS=prepared_statements, OUTBOX_GRACE_SECONDS="0")
    with _running_worker() as worker:
        assert [_post_order(api) for _ in range(3)] == [201, 201, 201]
        wait_until(lambda: _all_completed(cloud, 3), what="the first orders to complete")
        api_session = get_connection().info.backend_pid
        before = cloud.pg.app_sessions()
        assert api_session in before
        assert len(before) >= 2, "the worker holds no connection of its own"

        cloud.set_password()
        cloud.publish_password()
        assert cloud.pg.terminate_app_sessions() >= before

        assert [_post_order(api) for _ in range(3)] == [201, 201, 201]
        wait_until(lambda: _all_completed(cloud, 6), what="the orders after the rotation")
        assert worker.is_alive()
        after = cloud.pg.app_sessions()
        assert len(after) >= 2
        assert not after & before
        wait_until(lambda: _unsent_notifications(cloud) == 0, what="every notification sent")
    assert invariant_violations() == []  # read with the rotated secret, as the app connects


def test_a_reconnect_before_the_secret_is_updated_fails_and_the_next_one_succeeds(
    cloud: CloudDatabase, api: Client
) -> None:
    assert _post_order(api) == 201
    cloud.set_password()  # the database already has the new password, the secret not yet
    assert _post_order(api) == 201  # an open session outlives its password
    cloud.pg.terminate_app_sessions()

    response = api.http.post(
        "/orders", headers={"Content-Type": "application/json"}, body=json.dumps(ORDER)
    )
    assert response.status_code == 503
    assert json.loads(response.body)["error"]["code"] == "SERVICE_UNAVAILABLE"

    cloud.publish_password()
    assert _post_order(api) == 201
    assert len(cloud.statuses()) == 3


def test_the_cached_secret_is_read_again_once_older_than_its_max_age(
    cloud: CloudDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = database_url()
    cloud.set_password()
    cloud.publish_password()
    monkeypatch.setenv("DB_SECRET_MAX_AGE_SECONDS", "3600")
    assert database_url() == cached
    monkeypatch.setenv("DB_SECRET_MAX_AGE_SECONDS", "0")
    assert parse_dsn(database_url())["password"] == cloud.password


def test_a_failed_re_read_keeps_the_cached_secret(cloud: CloudDatabase) -> None:
    cached = database_url()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DB_SECRET_MAX_AGE_SECONDS", "0")
        env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8218")  # nothing listens there
        reset_client()
        try:
            assert database_url() == cached
            assert get_connection().info.backend_pid in cloud.pg.app_sessions()
        finally:
            env.undo()
            reset_client()


def test_the_migrate_function_connects_after_a_rotation(
    cloud: CloudDatabase, api: Client
) -> None:
    database_url()  # the container read the secret before the rotation
    cloud.set_password()
    cloud.publish_password()
    assert api.lambda_.invoke("migrate", {}).payload == {"applied": []}


# --- the deploy-time migration waits for the database (RDS Proxy targets registering) ------


class FakeClock:
    """Stands in for the Lambda context's remaining time and for `time.sleep`; `events` run
    at the end of the sleep with that number (1 = the first), as the world moves on."""

    def __init__(self, budget: float, events: dict[int, Callable[[], None]] | None = None
                 ) -> None:  # fmt: skip
        self.budget = budget
        self.events = events or {}
        self.now = 0.0
        self.sleeps: list[float] = []

    def seconds_left(self) -> float:
        return self.budget - self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.events.get(len(self.sleeps), lambda: None)()


@pytest.fixture
def unreachable_endpoint(
    cloud: CloudDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """An endpoint with nothing listening yet, like a proxy without a registered target."""
    endpoint = tmp_path / "proxy"
    endpoint.mkdir()
    monkeypatch.setenv("DB_HOST", str(endpoint))
    reset_dsn()
    return endpoint


def test_migrate_retries_with_backoff_until_the_database_accepts_connections(
    cloud: CloudDatabase, unreachable_endpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = "orderflow_rotation_fresh"
    cloud.pg.admin(f"DROP DATABASE IF EXISTS {fresh} WITH (FORCE)", database="postgres")
    cloud.pg.admin(f"CREATE DATABASE {fresh} OWNER {ROLE}", database="postgres")
    monkeypatch.setenv("DB_NAME", fresh)
    reset_dsn()
    socket = f".s.PGSQL.{cloud.pg.port}"

    def target_registered() -> None:
        (unreachable_endpoint / socket).symlink_to(Path(cloud.pg.socket_dir) / socket)

    clock = FakeClock(budget=300, events={3: target_registered})
    applied = migrate_when_reachable(clock.seconds_left, clock.sleep)

    assert clock.sleeps == [1, 2, 4]
    assert applied == [path.name for _, path in available_migrations()]


def test_migrate_gives_up_in_time_when_the_database_never_comes(
    cloud: CloudDatabase, unreachable_endpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect_timeout = 5
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", str(connect_timeout))
    clock = FakeClock(budget=300)

    with pytest.raises(psycopg2.OperationalError):
        migrate_when_reachable(clock.seconds_left, clock.sleep)

    assert clock.sleeps[:6] == [1, 2, 4, 8, 16, 16]
    assert set(clock.sleeps[5:]) == {16}
    last_attempt_ends = clock.now + connect_timeout
    assert last_attempt_ends <= clock.budget - MIGRATION_RESERVE_SECONDS
    assert last_attempt_ends + 16 > clock.budget - MIGRATION_RESERVE_SECONDS  # no time wasted


def test_the_migrate_function_takes_its_deadline_from_the_lambda_context(
    cloud: CloudDatabase, unreachable_endpoint: Path
) -> None:
    from app import migrate

    class Context:
        calls = 0

        def get_remaining_time_in_millis(self) -> int:
            self.calls += 1
            return int((MIGRATION_RESERVE_SECONDS + 1) * 1000)  # no time left for a retry

    context = Context()
    with pytest.raises(psycopg2.OperationalError):
        migrate({}, context)
    assert context.calls == 1
