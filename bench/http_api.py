"""3. POST /orders over HTTP on the local server, and 1,000 orders end to end.

Baseline: a no-op Chalice route (POST /orders answering 201 with a fixed body) on the same
Chalice local server class, driven by the same load generator. The ratio isolates what our
handler adds (validation, the database, the outbox relay) from the HTTP server, Chalice's
request/event shaping and the client, which are the same on both sides.

The load generator runs in its own process (its own GIL); the servers, and in the end-to-end
run the worker, run in this process; moto runs in its own process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

from bench.env import BenchEnv, autocommit, configured, stub_aws
from bench.handlers import order_body, thread_safe, to_json
from bench.measure import await_completed, percentile, record_aws_calls, time_calls
from bench.report import Figure, Section, ms, pct
from bench.sizes import Sizes
from processor.devstack.local import free_port
from processor.entrypoints import worker as worker_module

E2E_CLIENTS = 8
WORKER_CONCURRENCY = 4
E2E_WINDOW = 40  # orders in flight at most during the end-to-end run


class Server:
    """A Chalice LocalDevServer served from a daemon thread."""

    def __init__(self, server: Any, port: int) -> None:
        self.server = server
        self.url = f"http://127.0.0.1:{port}/orders"
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server.server_close()
        self.thread.join(timeout=10)


def _api_server() -> Server:
    from processor.devstack.local import start_api

    port = free_port()
    return Server(start_api("127.0.0.1", port), port)


def _noop_server() -> Server:
    from chalice import Chalice, Response
    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, LocalDevServer, ThreadedHTTPServer

    noop = Chalice(app_name="bench-noop")
    body = to_json({"order_id": "00000000-0000-0000-0000-000000000000", "status": "PENDING"})

    @noop.route("/orders", methods=["POST"])
    def create_order() -> Response:
        return Response(body=body, status_code=201, headers={"Content-Type": "application/json"})

    # The same server settings as processor.devstack.local.start_api: TCP_NODELAY, a listen
    # backlog.
    class Handler(ChaliceRequestHandler):
        disable_nagle_algorithm = True

    class HTTPServer(ThreadedHTTPServer):
        request_queue_size = 128

    config = Config.create(chalice_app=noop, app_name="bench-noop", lambda_timeout=30)
    port = free_port()
    server = LocalDevServer(
        thread_safe(noop), config, "127.0.0.1", port, handler_cls=Handler, server_cls=HTTPServer
    )
    return Server(server, port)


def load(url: str, clients: int, requests: int, body: str) -> dict[str, Any]:
    """Run the load generator process and return its summary."""
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            url,
            "--clients",
            str(clients),
            "--requests",
            str(requests),
            "--body",
            body,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} failed requests, e.g. {result['first_errors']}")
    return result


def _throughput_figure(name: str, subject: dict[str, Any], noop: dict[str, Any]) -> Figure:
    def show(r: dict[str, Any]) -> str:
        rate = r["requests"] / r["wall_seconds"]
        return f"{rate:,.0f}/s, p50 {ms(r['p50'])}, p99 {ms(r['p99'])}"

    return Figure(
        name=name,
        result=show(subject),
        baseline=f"no-op route: {show(noop)}",
        ratio=subject["p50"] / noop["p50"],
    )


def run(env: BenchEnv, sizes: Sizes) -> Section:
    section = Section("http", "3. HTTP API")
    env.truncate()
    body = to_json(order_body(3))
    api, noop = _api_server(), _noop_server()
    try:
        with stub_aws():
            results = {}
            for clients, requests in sizes.http_requests:
                load(noop.url, clients, max(clients, requests // 10), body)  # warm up
                load(api.url, clients, max(clients, requests // 10), body)
                results[clients] = (
                    load(api.url, clients, requests, body),
                    load(noop.url, clients, requests, body),
                )
                section.figures.append(
                    _throughput_figure(
                        f"POST /orders, {clients} client(s), SQS stubbed", *results[clients]
                    )
                )
        clients = 8
        with configured(ORDER_QUEUE_URL=env.fresh_queue("bench-http")):
            moto = load(api.url, clients, sizes.http_moto_requests, body)
            noop_moto = load(noop.url, clients, sizes.http_moto_requests, body)
        section.figures.append(
            _throughput_figure(
                f"POST /orders, {clients} clients, SQS send to moto", moto, noop_moto
            )
        )
        env.truncate()
        e2e = _end_to_end(env, sizes.e2e_orders, api.url, body)
    finally:
        api.stop()
        noop.stop()
    section.figures += e2e.figures
    top = max(results)
    subject, baseline = results[top]
    section.findings.append(
        f"At {top} clients the API answers p50 {ms(subject['p50'])} against"
        f" {ms(baseline['p50'])} for a no-op route on the same server: the rest is our handler"
        " (validation, one create transaction, the outbox relay) and, with 2 cores, the"
        " database and the load generator competing for CPU."
    )
    section.findings += e2e.findings
    return section


def _end_to_end(env: BenchEnv, orders: int, url: str, body: str) -> Section:
    """Produce `orders` over HTTP while the worker consumes, never more than E2E_WINDOW in
    flight (moto slows down as its queue grows); wait until all are COMPLETED."""
    from processor.entrypoints.worker import Worker, WorkerOptions

    result = Section("e2e", "end to end")
    stop = threading.Event()
    busy: list[float] = []
    produced = 0
    api_busy = 0.0

    def produce(done: int, created: int) -> bool:
        """Top the backlog up to E2E_WINDOW once it has halved; True when it sent orders."""
        nonlocal produced, api_busy
        if produced >= orders or created - done > E2E_WINDOW // 2:
            return False
        batch = min(E2E_WINDOW - (created - done), orders - produced)
        api_busy += load(url, E2E_CLIENTS, batch, body)["busy_seconds"]
        produced += batch
        return True

    with (
        configured(ORDER_QUEUE_URL=env.fresh_queue("bench-e2e"), OUTBOX_GRACE_SECONDS="5"),
        record_aws_calls() as calls,
        time_calls(worker_module, "handle_batch", busy),
        autocommit(env.database_url) as conn,
        conn.cursor() as cur,
    ):
        options = WorkerOptions(
            concurrency=WORKER_CONCURRENCY, wait_seconds=1, visibility_timeout=60, sweep_interval=5
        )
        thread = threading.Thread(target=Worker(options, stop).run, name="bench-worker")
        thread.start()
        started = time.perf_counter()
        deadline = started + 120 + orders * 0.6
        try:
            max_in_flight = await_completed(cur, orders, deadline, between=produce)
            wall = time.perf_counter() - started
        finally:
            stop.set()
            thread.join(timeout=60)
        cur.execute(
            "SELECT extract(epoch FROM h.changed_at - o.created_at) FROM orders o"
            " JOIN order_status_history h ON h.order_id = o.order_id AND h.status = 'COMPLETED'"
        )
        latencies = [float(row[0]) for row in cur.fetchall()]

    aws = calls.seconds
    worker_ops = ("SendEmail", "PublishBatch", "ReceiveMessage", "DeleteMessageBatch")
    worker_aws = sum(aws[op] for op in worker_ops)
    worker_busy = sum(busy) + aws["ReceiveMessage"] + aws["DeleteMessageBatch"]
    result.figures.append(
        Figure(
            name=f"{orders:,} orders end to end ({E2E_CLIENTS} HTTP clients, at most"
            f" {E2E_WINDOW} in flight, {WORKER_CONCURRENCY} worker threads, moto SQS/SES/SNS)",
            result=f"{orders / wall:,.1f} orders/s completed; order latency p50"
            f" {percentile(latencies, 50):.2f} s, p99 {percentile(latencies, 99):.2f} s;"
            f" at most {max_in_flight} in flight",
        )
    )
    result.findings.append(
        f"End to end, {orders:,} orders took {wall:.0f} s ({orders / wall:,.1f}/s), with the"
        f" producer held to {E2E_WINDOW} orders in flight because moto slows down as a queue"
        f" grows. The emulator is most of the time: the worker spent"
        f" {pct(worker_aws / worker_busy)} of its busy time ({worker_busy:.0f} thread-s) inside"
        " moto calls (SES + SNS per status change, SQS receive/delete), the API"
        f" {pct(aws['SendMessageBatch'] / api_busy)} of its request time in the SQS"
        " send."
    )
    return result
