"""localstripe (a Stripe emulator, develop and test only) in a process of its own.

`python -m processor.devstack.localstripe PORT` runs it in memory only: upstream pickles its
whole store to the fixed path /tmp/localstripe.pickle after every write (and reloads it at
start unless `--from-scratch`), which makes each write slower as the store grows and lets
side-by-side instances (tests, several `make run`) share one file. Each instance here starts
empty and keeps nothing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from processor.devstack.processes import stop_process


@dataclass
class LocalStripe:
    process: subprocess.Popen[bytes]
    api_base: str
    port: int

    def stop(self) -> None:
        stop_process(self.process)

    def wait_ready(self, timeout: float = 30) -> LocalStripe:
        """Return once it accepts connections (it binds only when its app is ready)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"localstripe on port {self.port} did not start") from None
                time.sleep(0.05)


def spawn(port: int) -> LocalStripe:
    """Start it on `port` (its own session, so a Ctrl-C reaches it only through our stop)."""
    process = subprocess.Popen(  # noqa: S603 (this interpreter, our module)
        [sys.executable, "-m", "processor.devstack.localstripe", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return LocalStripe(process, f"http://127.0.0.1:{port}", port)


def _exit_with(parent: int) -> None:
    """Exit once the process that started this one is gone (SIGKILLed, crashed): its own
    session means no signal of the parent's group reaches it."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def main(port: int) -> None:
    import localstripe.resources
    from localstripe import server

    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()

    localstripe.resources.Store.dump_to_disk = lambda self: None
    sys.argv = ["localstripe", "--port", str(port), "--from-scratch"]
    server.start()


if __name__ == "__main__":
    main(int(sys.argv[1]))
