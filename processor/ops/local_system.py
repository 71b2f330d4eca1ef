"""How a running local system (`make run`, `make services`) is found by the admin CLI.

The local system writes the environment that points at it (database, moto endpoints, queue
URLs) to `<data dir>/system.json` once it is up and removes the file when it stops. An admin
command run with no database configured (neither `DATABASE_URL` nor `DB_SECRET_ARN`) adopts
that environment, so the README's commands work in a new shell without the banner's exports;
one whose owner died (SIGKILL) is ignored. Anything the user set explicitly wins: the file is
read only when nothing points anywhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO / ".local"
STATE_FILE = "system.json"
NOT_RUNNING = (
    "no local system is running and no database is set: start `make run` (or `make services`)"
    " in {repo}, or set DATABASE_URL (and --stack STACK for a deployed stack's queues)"
)


def data_dir() -> Path:
    """The local system's data directory (`ORDERFLOW_DATA_DIR`, else `.local/`)."""
    return Path(os.environ.get("ORDERFLOW_DATA_DIR") or DEFAULT_DATA)


def announce(env: dict[str, str], directory: Path | None = None) -> Path:
    """Record this process's environment for the admin CLI (readable by the owner only)."""
    path = (directory or data_dir()) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"pid": os.getpid(), "env": env}, out)
    partial.replace(path)
    return path


def withdraw(directory: Path | None = None) -> None:
    """Remove the record if this process wrote it (a newer system's record stays)."""
    path = (directory or data_dir()) / STATE_FILE
    if _read(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def running_environment(directory: Path | None = None) -> dict[str, str] | None:
    """The environment of the local system running from `directory`, or None."""
    record = _read((directory or data_dir()) / STATE_FILE)
    pid, env = record.get("pid"), record.get("env")
    if not isinstance(pid, int) or not isinstance(env, dict) or not _alive(pid):
        return None
    return {str(key): str(value) for key, value in env.items()}


def database_configured() -> bool:
    return bool(os.environ.get("DATABASE_URL") or os.environ.get("DB_SECRET_ARN"))


def adopt() -> bool:
    """With no database configured, take the running local system's environment (True if
    one was found); with one configured, change nothing."""
    if database_configured():
        return False
    env = running_environment()
    if env is None:
        return False
    os.environ.update(env)
    return True


def _read(path: Path) -> dict[str, object]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
