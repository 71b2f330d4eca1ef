"""Autoreload for `make run` and `make services`: the product code runs in a child process that
is replaced whenever a file of it changes.

The supervisor (the `python -m processor local` process) owns what must outlive a reload:
PostgreSQL and the moto servers, so the queues and their messages survive. The child (`local
--app-only`) runs the migrations, the API (unless `--services-only`) and the processor. On a
change under `processor/`, `db/` or `chalice_app/` (Python files, migrations, Chalice's config)
the supervisor sends the child SIGTERM and waits: it stops as it does on Ctrl-C, so messages in
progress finish and received ones not yet started go back to the queue at once. Then a new
child imports the changed code. A child that cannot start (a syntax error mid-edit) is
reported and replaced on the next save.

Watching is `watchfiles` (Rust `notify`: inotify on Linux, FSEvents on macOS), never a
hand-written poller.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from watchfiles import Change, DefaultFilter, watch

from processor.entrypoints.stopping import StopSignals

READY_FD_ENV = "ORDERFLOW_READY_FD"
READY = b"ready\n"
START_SECONDS = 60.0
# The child's own stop takes at most STOP_SECONDS - 3 for the processor plus 2 for the API;
# after that a still-busy consumer is killed and SQS redelivers its messages.
CHILD_STOP_SECONDS = 8.0
WATCHED_SUFFIXES = (".py", ".sql", ".json")


def watched_paths(repo: Path) -> list[Path]:
    """Every directory of product code the local system runs."""
    return [repo / "processor", repo / "db", repo / "chalice_app"]


class App:
    """One child process running the product code; `start()` returns once it is serving."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, signals: StopSignals) -> bool:
        """Start a child and wait until it reports ready (True), exits, or a stop arrives."""
        reader, writer = os.pipe()
        try:
            self.process = subprocess.Popen(  # noqa: S603 (this interpreter, our module)
                self.argv, pass_fds=(writer,), env={**os.environ, READY_FD_ENV: str(writer)}
            )
        finally:
            os.close(writer)
        try:
            deadline = time.monotonic() + START_SECONDS
            while not signals.requested and time.monotonic() < deadline:
                readable, _, _ = select.select([reader], [], [], 0.2)
                if readable:
                    return os.read(reader, len(READY)) == READY  # b"": it exited first
            return False
        finally:
            os.close(reader)

    def stop(self, seconds: float = CHILD_STOP_SECONDS) -> None:
        """SIGTERM (the child's graceful stop), SIGKILL after `seconds`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait(self, seconds: float) -> None:
        """Wait for a child that was signalled with the whole group (Ctrl-C), then make sure."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.stop(1)


class ProductFiles(DefaultFilter):
    """Python files, migrations and Chalice's config; not caches, editors' files or logs."""

    def __call__(self, change: Change, path: str) -> bool:
        return path.endswith(WATCHED_SUFFIXES) and super().__call__(change, path)


class _Requested:
    """The `stop_event` watchfiles polls: set once a stop signal arrived."""

    def __init__(self, signals: StopSignals) -> None:
        self._signals = signals

    def is_set(self) -> bool:
        return self._signals.requested


def supervise(
    app: App, signals: StopSignals, repo: Path, announce: Callable[[str], None] = print
) -> None:
    """Restart `app` on every change under the product directories until a stop signal."""
    for changes in watch(
        *watched_paths(repo),
        watch_filter=ProductFiles(),
        stop_event=_Requested(signals),
        debounce=400,
        raise_interrupt=False,
    ):
        names = sorted({os.path.relpath(path, repo) for _, path in changes})
        started = time.monotonic()
        announce(f"reloading: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''} changed")
        app.stop()
        if signals.requested:
            return
        if app.start(signals):
            announce(f"reloaded in {time.monotonic() - started:.1f} s")
        elif not signals.requested:
            announce("the new code did not start (see the error above); saving again retries")


def report_ready() -> None:
    """In the child: tell the supervisor it is serving (no-op when run on its own)."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return
    os.write(int(fd), READY)
    os.close(int(fd))


def exit_with(parent: int, signals: StopSignals) -> threading.Thread:
    """In the child: wake the main thread if the supervisor dies (e.g. SIGKILL), so no orphan
    keeps serving on its port; `orphaned(parent)` then tells why it woke."""

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        signals.wake()

    thread = threading.Thread(target=watch_parent, name="parent-watch", daemon=True)
    thread.start()
    return thread


def orphaned(parent: int) -> bool:
    return os.getppid() != parent


def child_argv(port: int, services_only: bool, processor: str) -> list[str]:
    """The command that runs the reloadable part under this interpreter."""
    argv = [sys.executable, "-m", "processor", "local", "--app-only", "--port", str(port)]
    return [*argv, "--processor", processor, *(["--services-only"] if services_only else [])]
