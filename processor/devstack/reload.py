"""Autoreload for `make run` and `make services`: the product code runs in a child process that
is replaced whenever a file of it changes.

The supervisor (the `python -m processor local` process) owns what must outlive a reload:
PostgreSQL and the moto servers, so the queues and their messages survive. The child (`local
--app-only`) runs the migrations, the API (unless `--services-only`) and the processor. On a
change under `processor/`, `db/` or `chalice_app/` (Python files, migrations, Chalice's config)
the supervisor starts a new child, which imports its libraries and the changed code, and
meanwhile sends the old one SIGTERM: it stops as it does on Ctrl-C, so messages in progress
finish and received ones not yet started go back to the queue at once. Once it has exited,
the new child may bind the API port and consume (its `go` pipe) and reports when it serves
(its `ready` pipe). A child that cannot start (a syntax error mid-edit) is reported and
replaced on the next save.

Watching is `watchfiles` (Rust `notify`: inotify on Linux, FSEvents on macOS), never a
hand-written poller.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change, DefaultFilter, watch

from processor.entrypoints.stopping import StopSignals

READY_FD_ENV = "ORDERFLOW_READY_FD"
GO_FD_ENV = "ORDERFLOW_GO_FD"
READY = b"ready\n"
GO = b"g"
START_SECONDS = 60.0
# The child's own stop takes at most STOP_SECONDS - 3 for the processor plus 2 for the API;
# after that a still-busy consumer is killed and SQS redelivers its messages.
CHILD_STOP_SECONDS = 8.0
WATCHED_SUFFIXES = (".py", ".sql", ".json")


def watched_paths(repo: Path) -> list[Path]:
    """Every directory of product code the local system runs."""
    return [repo / "processor", repo / "db", repo / "chalice_app"]


@dataclass
class _Child:
    """A started child with the two pipes of its start: `go` (ours to write: you may bind the
    port and consume now) and `ready` (its to write: serving)."""

    process: subprocess.Popen[bytes]
    ready: int
    go: int

    def release(self) -> None:
        """Let it start serving (it has imported the code meanwhile)."""
        with contextlib.suppress(OSError):  # it died while importing: `wait_ready` says so
            os.write(self.go, GO)
        self._close("go")

    def wait_ready(self, signals: StopSignals) -> bool:
        """True once it serves; False if it exited first or a stop signal arrived."""
        deadline = time.monotonic() + START_SECONDS
        try:
            while not signals.requested and time.monotonic() < deadline:
                readable, _, _ = select.select([self.ready], [], [], 0.2)
                if readable:
                    return os.read(self.ready, len(READY)) == READY  # b"": it exited first
            return False
        finally:
            self._close("ready")

    def stop(self, seconds: float) -> None:
        """SIGTERM (its graceful stop), SIGKILL after `seconds`."""
        self._close("go")  # one still waiting for its go exits
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._close("ready")

    def _close(self, name: str) -> None:
        fd = getattr(self, name)
        if fd >= 0:
            os.close(fd)
            setattr(self, name, -1)


class App:
    """The child process running the product code, and its replacement on a change.

    A replacement is started before the running child is stopped, so importing the changed
    code overlaps the old child's stop; it binds the API port and starts consuming only once
    the old one has exited (the `go` pipe)."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.current: _Child | None = None

    def start(self, signals: StopSignals) -> bool:
        """Start the first child; True once it serves."""
        self.current = self._spawn()
        self.current.release()
        return self.current.wait_ready(signals)

    def replace(self, signals: StopSignals) -> bool:
        """Stop the running child (in-flight work finishes) and let a new one serve; True
        once it does."""
        following = self._spawn()
        if self.current is not None:
            self.current.stop(CHILD_STOP_SECONDS)
        self.current = following
        if signals.requested:
            return False
        following.release()
        return following.wait_ready(signals)

    def wait(self, seconds: float) -> None:
        """Wait for the child a Ctrl-C reached with the whole group, then make sure it is gone."""
        if self.current is not None:
            self.current.stop(seconds)

    def _spawn(self) -> _Child:
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        env = {**os.environ, READY_FD_ENV: str(ready_w), GO_FD_ENV: str(go_r)}
        try:
            process = subprocess.Popen(self.argv, pass_fds=(ready_w, go_r), env=env)  # noqa: S603 (this interpreter, our module)
        finally:
            os.close(ready_w)
            os.close(go_r)
        return _Child(process, ready_r, go_w)


class ProductFiles(DefaultFilter):
    """Python files, migrations and Chalice's config; not caches, editors' files or logs."""

    def __call__(self, change: Change, path: str) -> bool:
        return path.endswith(WATCHED_SUFFIXES) and super().__call__(change, path)


# How long watchfiles waits for a change before answering "none yet": the first answer says
# the watches are in place; later ones only loop.
WATCH_TIMEOUT_MS = 200


class _Requested:
    """The `stop_event` watchfiles polls: set once a stop signal arrived."""

    def __init__(self, signals: StopSignals) -> None:
        self._signals = signals

    def is_set(self) -> bool:
        return self._signals.requested


def supervise(
    app: App,
    signals: StopSignals,
    repo: Path,
    announce: Callable[[str], None] = print,
    watching: Callable[[], None] = lambda: None,
) -> None:
    """Restart `app` on every change under the product directories until a stop signal.

    `watching` runs once the watches are in place (watchfiles sets them up when its generator
    first runs, and answers a quiet interval with an empty set): a "Ready" printed there
    promises that a save from then on reloads, where one printed before could miss a save
    made at once."""
    armed = False
    for changes in watch(
        *watched_paths(repo),
        watch_filter=ProductFiles(),
        stop_event=_Requested(signals),
        debounce=400,
        rust_timeout=WATCH_TIMEOUT_MS,
        yield_on_timeout=True,
        raise_interrupt=False,
    ):
        if not armed:
            armed = True
            watching()
        if not changes:
            continue
        names = sorted({os.path.relpath(path, repo) for _, path in changes})
        started = time.monotonic()
        announce(f"reloading: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''} changed")
        if app.replace(signals):
            announce(f"reloaded in {time.monotonic() - started:.1f} s")
        elif not signals.requested:
            announce("the new code did not start (see the error above); saving again retries")


# What a child imports before its go, while the child it replaces is still stopping: the
# libraries that take most of its start-up (about a second on a laptop), none of which a
# reload changes.
PRELOADED = ("boto3", "botocore.session", "chalice.cli.factory", "chalice.local", "pydantic")


def preload() -> None:
    for name in PRELOADED:
        importlib.import_module(name)


def await_go() -> bool:
    """In the child, after its imports: wait until the supervisor lets it serve (True), or
    learn that it never will (False: the supervisor stopped or closed the pipe)."""
    fd = os.environ.pop(GO_FD_ENV, None)
    if fd is None:
        return True
    try:
        return os.read(int(fd), len(GO)) == GO
    finally:
        os.close(int(fd))


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
