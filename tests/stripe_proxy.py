"""A fault-injecting HTTP proxy in front of localstripe: what localstripe does not model.

- Idempotency keys, as Stripe keeps them: the first answer to a (key, path) is stored and
  replayed for every repeat, so a repeated create makes no second PaymentIntent.
- Declines of Stripe's decline test method `pm_card_chargeDeclined` (localstripe answers 404):
  a 402 `card_error` as Stripe sends it.
- Faults for the next matching requests: `429`, `500` (answered without forwarding) and
  `drop` (forwarded, answered by localstripe, then the connection is closed without a reply:
  the request took effect, the client never learns it, as after a timeout).

The adapter under test talks HTTP to this server; no client is mocked.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

DECLINE = {
    "error": {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "generic_decline",
        "message": "Your card was declined.",
    }
}


@dataclass
class ProxyState:
    upstream: str
    faults: list[tuple[str, str]] = field(default_factory=list)  # (path fragment, kind)
    forwarded: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    replayed: list[str] = field(default_factory=list)
    cache: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, path_fragment: str, *kinds: str) -> None:
        with self.lock:
            self.faults += [(path_fragment, kind) for kind in kinds]

    def _fault(self, path: str) -> str | None:
        with self.lock:
            for index, (fragment, kind) in enumerate(self.faults):
                if fragment in path:
                    del self.faults[index]
                    return kind
        return None

    def created_intents(self) -> int:
        return sum(1 for m, p in self.forwarded if (m, p) == ("POST", "/v1/payment_intents"))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read the state, not a log."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        state = self.server.state
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = self.headers.get("Idempotency-Key")
        cache_key = (key or "", self.path)
        with state.lock:
            cached = state.cache.get(cache_key) if key else None
        if cached is not None:
            state.replayed.append(self.path)
            self._reply(*cached)
            return
        fault = state._fault(self.path)
        if fault in ("429", "500"):
            self._reply(int(fault), json.dumps({"error": {"type": "api_error"}}).encode())
            return
        form = parse_qs(body.decode())
        if self.path == "/v1/payment_intents" and form.get("payment_method") == [
            "pm_card_chargeDeclined"
        ]:
            status, answer = 402, json.dumps(DECLINE).encode()
        else:
            status, answer = self._forward(body)
        if key:
            with state.lock:
                state.cache.setdefault(cache_key, (status, answer))
        if fault == "drop":
            self.close_connection = True
            return
        self._reply(status, answer)

    def _forward(self, body: bytes) -> tuple[int, bytes]:
        state = self.server.state
        request = urllib.request.Request(
            state.upstream + self.path, data=body or None, method=self.command
        )
        for header in ("Authorization", "Content-Type"):
            if self.headers.get(header):
                request.add_header(header, self.headers[header])
        with state.lock:
            state.forwarded.append((self.command, self.path))
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ProxyState


def start_proxy(upstream: str) -> tuple[_Server, ProxyState]:
    """Serve on a free loopback port; `server.server_address[1]` is the port."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = ProxyState(upstream)
    threading.Thread(target=server.serve_forever, name="stripe-proxy", daemon=True).start()
    return server, server.state
