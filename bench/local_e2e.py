"""7. The local system end to end, unthrottled: orders from several HTTP clients that do not wait
for processing, completed by the processor as `make run` runs it (the Chalice SQS handler fed
as the event source mapping does), with every AWS API call counted.

Unlike the throttled run in 3. (at most 40 orders in flight, the Fargate-style worker), the
producer never holds back, so the queue, the API and the processor compete as they do on a
developer's machine. The load generator and moto each run in their own process (their own
GIL); the API server and the processor share this one, as in `make run`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.env import BenchEnv, autocommit, configured
from bench.handlers import order_body, to_json
from bench.http_api import E2E_CLIENTS, _api_server, load
from bench.measure import await_completed, percentile, record_aws_calls, time_calls
from bench.report import Figure, Section, pct
from bench.sizes import Sizes
from processor.devstack.event_source import LambdaDelivery
from processor.devstack.local import CONCURRENCY, REGION

TARGET_RATE = 30.0  # orders completed per second
TARGET_CALLS = 8.0  # AWS API calls per order, all five customer emails included
WORKER_OPS = ("ReceiveMessage", "DeleteMessageBatch", "PublishBatch", "SendEmail")


def run(env: BenchEnv, sizes: Sizes) -> Section:
    from processor.entrypoints.worker import Worker, WorkerOptions

    section = Section("local-e2e", "7. Local end to end, unthrottled")
    orders = sizes.local_e2e_orders
    env.truncate()
    body = to_json(order_body(3))
    busy: list[float] = []
    produced: dict[str, Any] = {}
    queue_url = env.fresh_queue("bench-local")
    settings = {
        "ORDER_QUEUE_URL": queue_url,
        "OUTBOX_GRACE_SECONDS": "5",
        "CUSTOMER_EMAIL_STATUSES": None,  # the default: every status emails the customer
    }
    with (
        configured(**settings),
        record_aws_calls() as calls,
        time_calls(LambdaDelivery, "deliver", busy),
        autocommit(env.database_url) as conn,
        conn.cursor() as cur,
    ):
        api = _api_server()
        options = WorkerOptions(concurrency=CONCURRENCY, wait_seconds=1, sweep_interval=5)
        worker = Worker(options, delivery=LambdaDelivery(queue_url, REGION))
        consumer = threading.Thread(target=worker.run, name="bench-processor")
        consumer.start()
        producer = threading.Thread(
            target=lambda: produced.update(load(api.url, E2E_CLIENTS, orders, body)),
            name="bench-producer",
        )
        started = time.perf_counter()
        producer.start()
        deadline = started + 120 + orders * 0.5
        try:
            max_backlog = await_completed(cur, orders, deadline, alive=consumer.is_alive)
            wall = time.perf_counter() - started
            producer.join()
        finally:
            worker.stop.set()
            consumer.join(timeout=30)
            api.stop()
        cur.execute(
            "SELECT extract(epoch FROM h.changed_at - o.created_at) FROM orders o"
            " JOIN order_status_history h ON h.order_id = o.order_id AND h.status = 'COMPLETED'"
        )
        latencies = [float(row[0]) for row in cur.fetchall()]

    rate = orders / wall
    per_order = calls.total / orders
    breakdown = ", ".join(
        f"{op} {calls.counts[op] / orders:.2f}"
        for op in sorted(calls.counts, key=calls.counts.get, reverse=True)
    )
    worker_aws = sum(calls.seconds[op] for op in WORKER_OPS)
    worker_busy = sum(busy) + calls.seconds["ReceiveMessage"] + calls.seconds["DeleteMessageBatch"]
    api_aws, api_busy = calls.seconds["SendMessageBatch"], produced["busy_seconds"]
    emulator_share = (worker_aws + api_aws) / (worker_busy + api_busy)
    section.figures += [
        Figure(
            name=f"{orders:,} orders, {E2E_CLIENTS} HTTP clients not waiting, Lambda-mode"
            f" processor ({CONCURRENCY} concurrent invocations), moto SQS/SES/SNS",
            result=f"{rate:,.1f} orders/s completed; order latency p50"
            f" {percentile(latencies, 50):.2f} s, p99 {percentile(latencies, 99):.2f} s;"
            f" backlog at most {max_backlog}",
            target=f">= {TARGET_RATE:g} orders/s",
            passed=rate >= TARGET_RATE,
        ),
        Figure(
            name="AWS API calls per order (all five customer emails)",
            result=f"{per_order:.2f} ({breakdown})",
            target=f"<= {TARGET_CALLS:g}",
            passed=per_order <= TARGET_CALLS,
        ),
        Figure(
            name="Emulator's share of the busy time (processor and API)",
            result=f"{pct(emulator_share)}; processor {pct(worker_aws / worker_busy)},"
            f" API {pct(api_aws / api_busy)}",
        ),
    ]
    section.findings += [
        f"{orders:,} orders created at {orders / produced['wall_seconds']:,.0f}/s by"
        f" {E2E_CLIENTS} clients that never wait were all COMPLETED {wall:.1f} s after the"
        f" first request ({rate:,.1f}/s), the processor at most {max_backlog} orders behind.",
        f"{per_order:.2f} AWS API calls per order: one SQS send from the API, receives and"
        " deletes in batches of up to 10, the order's five operator events in one SNS"
        " PublishBatch, and one SES SendEmail per status (CUSTOMER_EMAIL_STATUSES, default"
        f" all). {calls.empty_receives} of the receives were empty long polls.",
        f"moto is {pct(emulator_share)} of the busy time: {worker_aws:.1f} s of the"
        f" processor's {worker_busy:.1f} thread-s and {api_aws:.1f} s of the API's"
        f" {api_busy:.1f} request-s are spent inside emulator calls, which run in moto's own"
        " processes.",
        "The emulator is `processor.devstack.emulator`, as under `make run`: moto for SQS/SNS and a"
        " second moto for SES, each its own process, served with keep-alive connections"
        " (waitress), with moto's per-request directory listing and per-message datetime clock"
        " replaced; what moto answers is unchanged. The backlog is the point of this run: the"
        " throttled run in 3. keeps it under 40.",
    ]
    return section
