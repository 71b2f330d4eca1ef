"""Child processes of the local system (emulators, localstripe): one way to stop them."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen[bytes], grace_seconds: float = 5) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace_seconds`; reaped either way,
    so no zombie outlives the local system's stop."""
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
