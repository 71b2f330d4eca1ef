"""The local system's emulator ports: a busy port stops `python -m processor local` (what
`make run` runs) with one line naming the port and the setting that chose it, and an emulator
that exits while starting shows its last lines of output instead of hiding them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from processor.devstack.local import LocalSetupError, MotoProcess, free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_pair() -> Iterator[int]:
    """A port P that is free while P + 1 is held by a listener (the SES emulator's default)."""
    for _ in range(50):
        port = free_port()
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", port + 1))
        except OSError:
            holder.close()
            continue
        holder.listen()
        try:
            yield port
        finally:
            holder.close()
        return
    pytest.fail("no free port followed by a free port in 50 tries")


def _local(tmp_path: Path, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")},
        "DATABASE_URL": database_url,
        "ORDERFLOW_DATA_DIR": str(tmp_path),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "processor", "local", "--port", str(free_port())],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_busy_ses_port_stops_the_local_system_with_one_line_naming_port_and_setting(
    tmp_path, database_url, busy_pair
):
    result = _local(tmp_path, database_url, MOTO_PORT=str(busy_pair))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"orderflow cannot start: port {busy_pair + 1} (SES_PORT, default MOTO_PORT + 1) is in"
        " use: set SES_PORT to a free port, or to 0 for any free one"
    ]


def test_a_busy_moto_port_is_named_with_its_own_setting(tmp_path, database_url, busy_pair):
    result = _local(tmp_path, database_url, MOTO_PORT=str(busy_pair + 1))

    assert result.returncode == 1
    assert f"port {busy_pair + 1} (MOTO_PORT) is in use: set MOTO_PORT" in result.stderr


def test_an_emulator_that_exits_while_starting_shows_its_last_output(busy_pair):
    """The emulator itself, on a port taken after any check could see it free (a race)."""
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by MotoProcess.stop)
    process = subprocess.Popen(
        [sys.executable, "-m", "processor.devstack.emulator", str(busy_pair + 1), str(os.getpid())],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    emulator = MotoProcess(process, f"http://127.0.0.1:{busy_pair + 1}", stderr, "SES_PORT")

    with pytest.raises(LocalSetupError) as raised:
        emulator.wait_ready(timeout=30)

    message = str(raised.value)
    assert "(SES_PORT) exited; its last output:" in message
    assert "Address already in use" in message
    assert len(message.splitlines()) <= 11  # the headline and at most ten lines of output
