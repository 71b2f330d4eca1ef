"""9. One reconciler run over 100,000 orders: provider calls and seconds per run.

The database holds 100,000 completed, captured Stripe orders from three days ago (with their
items, full history and outbox records, generated in SQL), of which `reconcile_recent` (250)
changed in the last hour and have real PaymentIntents in localstripe (authorised, then
captured, so its event list holds one event each). One `reconcile()` then runs as the
scheduled function does (no queue depths): the `admin check` queries over the whole store,
`max_orders` retrievals, the window's event pages and the refund page. Its bound is the point:
the old orders cost database time, never provider calls.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Any

from bench.env import BenchEnv, configured
from bench.report import Figure, Section
from bench.sizes import Sizes
from db.connection import reset_dsn
from processor import bootstrap
from processor.adapters.payments.stripe_rest import StripeProvider
from processor.devstack import localstripe
from processor.devstack.local import free_port
from processor.reconciliation.reconciler import Options, reconcile

DATABASE = "orderflow_bench_reconcile"
KEY = "sk_test_bench"
STATUSES = ("PENDING", "PROCESSING", "PAYMENT_CONFIRMED", "FULFILLED", "COMPLETED")
LOAD = [
    "SET synchronous_commit = off",
    """
    INSERT INTO orders (order_id, customer_email, customer_name, total_amount, status,
                        created_at, updated_at, currency, payment_method)
    SELECT gen_random_uuid(), 'customer' || g || '@example.com', 'Customer ' || g, 10.00,
           'COMPLETED', now() - interval '3 days', now() - interval '3 days', 'usd',
           'pm_card_visa'
    FROM generate_series(1, %(rows)s) AS g
    """,
    """INSERT INTO order_items (order_id, line_no, product_name, quantity, unit_price)
       SELECT order_id, 1, 'Widget', 1, total_amount FROM orders""",
    """INSERT INTO order_status_history (order_id, status, changed_at)
       SELECT o.order_id, s.status, o.created_at FROM orders o
       CROSS JOIN unnest(%(statuses)s::text[]) WITH ORDINALITY AS s(status, n)
       ORDER BY o.order_id, s.n""",
    """INSERT INTO outbox (kind, order_id, status, payload, published_at)
       SELECT 'notification', h.order_id, h.status, '{}', h.changed_at
       FROM order_status_history h""",
    """INSERT INTO outbox (kind, order_id, status, payload, published_at)
       SELECT 'order', order_id, 'PENDING', '{}', created_at FROM orders""",
    """INSERT INTO payments (order_id, amount, outcome, provider, currency, amount_minor,
                             authorized_minor, captured_minor, status, provider_ref,
                             authorize_key, created_at, updated_at)
       SELECT order_id, 10.00, 'CHARGED', 'stripe', 'usd', 1000, 1000, 1000, 'CAPTURED',
              'pi_bench_' || order_id, 'order-' || order_id || '-authorize', created_at,
              created_at FROM orders""",
]


def _stripe(api_base: str, path: str, **form: Any) -> dict[str, Any]:
    request = urllib.request.Request(api_base + path, data=urllib.parse.urlencode(form).encode())
    request.add_header("Authorization", f"Bearer {KEY}")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def _recent(url: str, api_base: str, recent: int) -> None:
    """`recent` orders of the last hour, each with a real captured PaymentIntent."""
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT order_id FROM orders ORDER BY order_id LIMIT %s", (recent,))
        for (order_id,) in cur.fetchall():
            intent = _stripe(api_base, "/v1/payment_intents", amount=1000, currency="usd",
                             payment_method="pm_card_visa", capture_method="manual",
                             confirm="true", **{"metadata[order_id]": order_id})
            _stripe(api_base, f"/v1/payment_intents/{intent['id']}/capture")
            cur.execute("UPDATE payments SET provider_ref = %s, created_at = now() - interval"
                        " '1 hour' WHERE order_id = %s", (intent["id"], order_id))
            cur.execute("UPDATE orders SET updated_at = now() - interval '1 hour'"
                        " WHERE order_id = %s", (order_id,))


def run(env: BenchEnv, sizes: Sizes) -> Section:
    rows = sizes.reconcile_orders
    url = env.database(DATABASE, recreate=True)
    import psycopg2

    started = time.perf_counter()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for sql in LOAD:
            cur.execute(sql, {"rows": rows, "statuses": list(STATUSES)})
        cur.execute("VACUUM ANALYZE")
    conn.close()
    load_seconds = time.perf_counter() - started
    emulator = localstripe.spawn(free_port()).wait_ready()
    try:
        _recent(url, emulator.api_base, sizes.reconcile_recent)
        bootstrap.set_payment_provider(StripeProvider(emulator.api_base, lambda: KEY))
        with configured(DATABASE_URL=url, PAYMENT_PROVIDER="stripe"):
            reset_dsn()
            began = time.perf_counter()
            report = reconcile(Options(include_queues=False))
            seconds = time.perf_counter() - began
    finally:
        bootstrap.set_payment_provider(None)
        reset_dsn()
        emulator.stop()
    options = Options()
    recent = sizes.reconcile_recent
    checked = min(options.max_orders, recent)
    bound = checked + (recent - 1) // 100 + 1 + 1  # retrievals, event pages, a refund page
    return Section(
        "reconcile",
        f"9. One reconciler run over {rows:,} orders",
        figures=[
            Figure("reconciler run, seconds", f"{seconds:.1f} s", target="< 60 s",
                   passed=seconds < 60),
            Figure("provider calls per run", str(report.provider_calls),
                   target=f"<= {bound}", passed=report.provider_calls <= bound),
        ],
        findings=[
            f"{rows:,} captured orders from three days ago plus {recent} of the last hour "
            f"(real PaymentIntents in localstripe); loading took {load_seconds:.0f} s.",
            f"The run checked {report.orders_checked} payments one by one (`max_orders` "
            f"{options.max_orders}) and read the window's events and refunds in pages of 100: "
            f"{report.provider_calls} provider calls, {len(report.findings)} finding(s). The "
            "old orders cost database time only (the `admin check` queries read the whole "
            "store), never a provider call.",
        ],
        data={"seconds": seconds, "provider_calls": report.provider_calls,
              "orders": rows, "findings": len(report.findings)},
    )
