"""`python -m processor.devstack.emulator PORT PARENT_PID`: the local moto server, run by
`processor.devstack.local.spawn_moto` as its own process in its own session.

It exits when its parent is gone, so a SIGKILLed `make run` leaves no emulator holding the
port: Linux is asked to send SIGTERM on the parent's death (PR_SET_PDEATHSIG), and elsewhere
a check of the parent pid twice a second does the same.

Speed-ups of moto's server, each with the same results (profiled under `make bench`):
- Its SQS queue checks every message's visibility on each SendMessage and ReceiveMessage,
  reading the clock through `moto.core.utils.unix_time` (two datetime constructions, ~20 µs)
  per message, so a backlog of a thousand orders made every send cost tens of milliseconds.
  The clock here is `time.time()`, which is what that function computes given no datetime.
- Routing a request lists moto's package directory twice (about 90 `stat` calls each), a
  quarter of a SendEmail's server time; the listing cannot change while the server runs.
- moto's own server (werkzeug's development server) closes the connection after every
  response, so each AWS call paid a TCP connect on both sides and a new server thread. The
  same WSGI application is served here by waitress, which keeps connections alive (and sets
  TCP_NODELAY) with a fixed pool of threads.
"""

from __future__ import annotations

import ctypes
import datetime
import logging
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def _fast_sqs_clock() -> None:
    from moto.core import utils
    from moto.sqs import models

    def unix_time(dt: datetime.datetime | None = None) -> float:
        return time.time() if dt is None else utils.unix_time(dt)

    def unix_time_millis(dt: datetime.datetime | None = None) -> float:
        return unix_time(dt) * 1000.0

    models.unix_time = unix_time
    models.unix_time_millis = unix_time_millis


def _cached_module_list() -> None:
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def main(argv: list[str]) -> int:
    port, parent = int(argv[0]), int(argv[1])
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from waitress.server import create_server

    logging.getLogger("waitress").setLevel(logging.ERROR)
    _fast_sqs_clock()
    _cached_module_list()
    server = create_server(
        DomainDispatcherApplication(create_backend_app), host="127.0.0.1", port=port, threads=16
    )
    threading.Thread(target=server.run, name="moto", daemon=True).start()
    while os.getppid() == parent:
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
