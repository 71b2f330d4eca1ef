"""6. Connection economy: simulated Lambda containers and the connections they hold.

Each thread stands in for one warm Lambda container: it calls the API handlers several times
(create, then get), and its thread-local connection is reused across those invocations. While
every container is still alive, pg_stat_activity is asked how many connections they hold.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any
from unittest import mock

import psycopg2

from bench.env import BenchEnv, autocommit, configured, stub_aws
from bench.handlers import invoke, load_app, order_body, proxy_event, to_json
from bench.report import Figure, Section
from bench.sizes import Sizes
from db import connection as db_connection
from processor.jsonutil import loads

GUIDANCE = (
    "In AWS each container keeps its one connection while warm, so connections = concurrent"
    " containers: cap them with the SQS event source's maximum concurrency and the API"
    " function's reserved concurrency below RDS max_connections (minus headroom for"
    " migrations and operators), or put RDS Proxy in front, which multiplexes container"
    " connections onto a small pool. Keep the code as it is (one connection per container,"
    " no client-side pool): a pool inside a single-request container only holds more idle"
    " connections."
)


def run(env: BenchEnv, sizes: Sizes) -> Section:
    section = Section("connections", "6. Connection economy")
    app = load_app()
    containers, calls = sizes.containers, sizes.calls_per_container
    application_name = f"orderflow-bench-{os.getpid()}"
    opened: Counter[str] = Counter()  # connections opened, by container thread
    original_connect = psycopg2.connect

    def counting_connect(*args: Any, **kwargs: Any) -> Any:
        opened[threading.current_thread().name] += 1
        return original_connect(*args, **kwargs)

    ready = threading.Barrier(containers + 1, timeout=300)
    release = threading.Event()
    failures: list[str] = []
    body = to_json(order_body(2))

    def container() -> None:
        try:
            for _ in range(calls):
                created = invoke(app, proxy_event("POST", "/orders", body=body), 201)
                order_id = loads(created["body"])["order_id"]
                path = f"/orders/{order_id}"
                event = proxy_event(
                    "GET", "/orders/{order_id}", path, path_parameters={"order_id": order_id}
                )
                invoke(app, event, 200)
        except Exception as error:
            failures.append(repr(error))
        finally:
            ready.wait()
            release.wait(timeout=300)
            db_connection.discard_connection()

    with (
        stub_aws(),
        configured(DB_APPLICATION_NAME=application_name),
        mock.patch.object(db_connection.psycopg2, "connect", counting_connect),
    ):
        threads = [
            threading.Thread(target=container, name=f"container-{n}") for n in range(containers)
        ]
        for thread in threads:
            thread.start()
        try:
            ready.wait()
            with autocommit(env.database_url) as conn, conn.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    (application_name,),
                )
                held = cur.fetchone()[0]
                cur.execute(
                    "SELECT count(*), current_setting('max_connections')::int"
                    " FROM pg_stat_activity WHERE backend_type = 'client backend'"
                )
                total, max_connections = cur.fetchone()
        finally:
            release.set()
            for thread in threads:
                thread.join(timeout=60)
    if failures:
        raise RuntimeError(f"{len(failures)} containers failed, e.g. {failures[0]}")
    by_containers = sum(n for name, n in opened.items() if name.startswith("container-"))

    section.figures.append(
        Figure(
            name=f"{containers} concurrent containers x {calls} create + get each",
            result=f"{held} connections in pg_stat_activity, {by_containers} opened",
            baseline=f"{containers * calls * 2} invocations",
            ratio=held / containers,
            target="1 per container",
            passed=held == containers and by_containers == containers,
        )
    )
    section.findings += [
        f"{containers * calls * 2} invocations opened {by_containers} connections: one per"
        " container,"
        f" reused across its invocations. The server had {total} client connections of"
        f" max_connections={max_connections} at that moment.",
        GUIDANCE,
    ]
    return section
