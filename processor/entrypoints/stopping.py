"""Stop requests from SIGINT/SIGTERM that are safe to receive twice, or many times, at once.

A Ctrl-C signals the terminal's whole foreground process group, and `make` forwards the signal
to its child as well, so `make run` gets two signals almost together (supervisors do the same
with SIGTERM). A handler that calls `threading.Event.set()` deadlocks when the second signal
runs it again inside the first `set()` (the Event's lock is not reentrant). So the handler
here only assigns the signal number; Python's C-level handler writes a byte to the wakeup fd,
which wakes the main thread blocked in `wait()`, and the main thread does the stopping itself,
outside any handler.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# What `signal.signal` returns and accepts: a handler, SIG_DFL/SIG_IGN, or None (not set
# from Python).
Handler = Callable[[int, FrameType | None], Any] | int | None


class StopSignals:
    """Install on the main thread with `with StopSignals() as stop:`, then `stop.wait()`."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self.signum: int | None = None
        self._previous: dict[int, Handler] = {}
        self._previous_fd = -1

    def __enter__(self) -> StopSignals:
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()

    def _record(self, signum: int, frame: FrameType | None) -> None:
        # An assignment only: a second signal may arrive while this runs, and must not block.
        self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def wake(self) -> None:
        """Wake `wait()` from another thread (e.g. a component that ended on its own)."""
        # A full buffer or a closed socket: `wait()` is awake or gone anyway.
        with contextlib.suppress(OSError):
            self._writer.send(b"\0")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop signal or `wake()`; True once a signal has been received."""
        if not self.requested:
            select.select([self._reader], [], [], timeout)
        with contextlib.suppress(OSError):  # drained (BlockingIOError)
            while self._reader.recv(4096):
                pass
        return self.requested
