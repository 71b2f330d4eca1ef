"""PostgreSQL stopped and started again while clients order and the worker processes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from uuid import uuid4

from tests.helpers import wait_until
from tests.reliability.chaos.audit import Outcome, audit
from tests.reliability.chaos.client import NO_ANSWER, good_503, http_call, order_body, submit
from tests.reliability.chaos.stack import Stack


def database_restart(
    stack: Stack, before: int = 15, after: int = 15, outage_seconds: float = 1.5, clients: int = 4
) -> Outcome:
    """Fault: `pg_ctl stop` for `outage_seconds` while `clients` keep placing orders (retrying
    503s with the same key) and a reader lists orders. Must hold: the outage is answered with
    well-formed 503s, the same API process answers 200 again by itself, every order tried is
    accepted once and completes."""
    outcome = Outcome(
        "PostgreSQL restarted under load",
        f"{clients} clients placing orders, {outage_seconds:g} s outage via pg_ctl stop/start",
    )
    stack.ensure_worker()
    api_pid = stack.api.pid
    load = _Load(stack, clients, give_up_at=outcome.started + 120)
    load.start()
    try:
        wait_until(lambda: len(load.accepted) >= before, 60, f"{before} orders before the outage")
        stack.stop_database()
        down_at = time.monotonic()
        try:
            wait_until(load.saw_503s, 30, "503 answers")
            time.sleep(max(0.0, down_at + outage_seconds - time.monotonic()))  # the outage lasts
        finally:
            stack.start_database()
        up_at = time.monotonic()
        outcome.figures["outage_seconds"] = round(up_at - down_at, 2)
        count_at_restart, ok_reads = len(load.accepted), load.reads["200"]
        wait_until(lambda: load.reads["200"] > ok_reads, 30, "the API to answer 200 again")
        outcome.figures["api_recovery_seconds"] = round(time.monotonic() - up_at, 2)
        wait_until(
            lambda: len(load.accepted) >= count_at_restart + after, 60, f"{after} orders after it"
        )
    finally:
        load.stop()
    outcome.figures.update(load.totals)
    outcome.figures["GET /orders answers"] = dict(load.reads)
    outcome.require(not load.bad, f"unexpected answers: {load.bad[:3]}")
    outcome.require(load.totals["answered_503"] > 0, "the outage was never observed as a 503")
    outcome.require(stack.api.poll() is None and stack.api.pid == api_pid, "the API restarted")
    never = load.totals["tried"] - len(load.accepted)
    outcome.require(never == 0, f"{never} never accepted")
    audit(stack, outcome, load.accepted, exact_emails=False)
    outcome.require(bool(stack.running_workers()), "the worker died")
    return outcome.finish()


class _Load:
    """`clients` threads placing orders one after another, and one reading GET /orders."""

    def __init__(self, stack: Stack, clients: int, give_up_at: float) -> None:
        self._api_url = stack.api_url
        self._give_up_at = give_up_at
        self._run = uuid4().hex[:8]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seen_503 = 0  # counted as they happen, not when the order is finally accepted
        self.accepted: dict[str, str] = {}
        self.totals: Counter[str] = Counter()
        self.reads: Counter[str] = Counter()
        self.bad: list[str] = []
        self._threads = [threading.Thread(target=self._client, args=(n,)) for n in range(clients)]
        self._threads.append(threading.Thread(target=self._reader))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=150)

    def saw_503s(self) -> bool:
        """Both a POST and a GET have been answered 503 since the load started."""
        return self.reads["503"] > 0 and self._seen_503 > 0

    def _count_503(self) -> None:
        with self._lock:
            self._seen_503 += 1

    def _client(self, number: int) -> None:
        n = 0
        while not self._stop.is_set():
            tag = f"db-{self._run}-{number}-{n}"
            result = submit(
                self._api_url, order_body(tag), tag, self._give_up_at, on_503=self._count_503
            )
            with self._lock:
                self.totals.update(
                    tried=1,
                    attempts=result.attempts,
                    answered_503=result.unavailable,
                    connection_errors=result.connection_errors,
                )
                self.bad.extend(result.bad)
                if result.order_id:
                    self.accepted[tag] = result.order_id
            n += 1
            time.sleep(0.02)  # pacing: a steady stream, not a flood

    def _reader(self) -> None:
        while not self._stop.is_set():
            try:
                status, data, headers = http_call(self._api_url, "GET", "/orders?limit=5")
            except NO_ANSWER:
                self.reads["connection_error"] += 1
                time.sleep(0.05)  # client back-off before the retry
                continue
            self.reads[str(status)] += 1
            if status == 503 and not good_503(data, headers):
                self.bad.append(f"malformed 503 on GET: {headers} {data!r}"[:300])
            elif status not in (200, 503):
                self.bad.append(f"GET /orders answered {status}")
            time.sleep(0.02)  # pacing
