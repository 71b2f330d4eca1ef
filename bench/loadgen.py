"""HTTP load generator, run as its own process so that the clients do not share the server's
GIL: `python -m bench.loadgen URL --clients 8 --requests 2000 --body JSON --expect 201`.

Each client is a thread with one keep-alive `http.client` connection. Prints one JSON line:
requests, errors, wall seconds, and latency percentiles in seconds.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import sys
import threading
import time
from urllib.parse import urlsplit

from bench.measure import percentile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", default="")
    parser.add_argument("--expect", type=int, default=201)
    args = parser.parse_args(argv)

    url = urlsplit(args.url)
    body = args.body.encode()
    headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
    tickets = itertools.count()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    ready = threading.Barrier(args.clients + 1)

    def client() -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        conn.connect()
        mine: list[float] = []
        ready.wait()
        while next(tickets) < args.requests:
            started = time.perf_counter()
            try:
                conn.request(args.method, url.path, body=body or None, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                if response.status != args.expect:
                    with lock:
                        errors.append(f"{response.status}: {payload[:200]!r}")
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    errors.append(repr(error))
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    result = {
        "requests": len(ordered),
        "errors": len(errors),
        "first_errors": errors[:3],
        "wall_seconds": wall,
        "busy_seconds": sum(ordered),
        "p50": percentile(ordered, 50),
        "p99": percentile(ordered, 99),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
