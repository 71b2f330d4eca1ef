"""The request path never waits for a relay: found by `make chaos`, where POST /orders hung
for over 15 s behind a sweeper that held a large batch of outbox rows while talking to SQS."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import psycopg2

from db.repository import OutboxRecord
from processor.orders import service as order_service
from processor.outbox import relay as outbox
from tests.helpers import order_request


def test_recording_a_send_skips_a_record_a_relay_holds_and_leaves_it_to_that_relay(
    system: dict[str, Any], configure: Any, database_url: str
) -> None:
    queue_url = system["ORDER_QUEUE_URL"]
    configure(ORDER_QUEUE_URL=f"{queue_url}-missing")  # the first send fails: left unsent
    order_id = UUID(order_service.create_order(order_request())[0]["order_id"])
    configure(ORDER_QUEUE_URL=queue_url)
    db = system["db"]
    with db.cursor() as cur:
        cur.execute(
            "SELECT id, payload FROM outbox WHERE order_id = %s AND kind = 'order'", (order_id,)
        )
        record_id, payload = cur.fetchone()

    relay = psycopg2.connect(database_url)  # a sweeper in the middle of its batch
    try:
        with relay.cursor() as cur:
            cur.execute("SELECT 1 FROM outbox WHERE id = %s FOR UPDATE", (record_id,))
        done = threading.Event()
        record = OutboxRecord(record_id, "order", order_id, "PENDING", payload, attempts=1)
        worker = threading.Thread(target=lambda: (outbox.publish_new_order(record), done.set()))
        worker.start()
        assert done.wait(timeout=5), "the request path waited for the relay's lock"
        worker.join()
    finally:
        relay.rollback()
        relay.close()
    with db.cursor() as cur:
        cur.execute("SELECT published_at IS NULL FROM outbox WHERE id = %s", (record_id,))
        assert cur.fetchone()[0], "the relay decides; here it rolled back, so it stays unsent"
