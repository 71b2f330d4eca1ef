"""The admin CLI finds a running local system by itself, and every expected condition (nothing
to talk to, an unknown order, Ctrl-C on `--follow`) ends in one line and an exit status,
never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from processor.__main__ import main
from processor.ops import local_system
from processor.orders import service as order_service
from tests.helpers import order_request, wait_until

REPO = Path(__file__).resolve().parents[2]
# Everything that points a process at a system; removed so only discovery can find one.
POINTERS = ("DATABASE_URL", "DB_SECRET_ARN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SES",
            "ORDER_QUEUE_URL", "ORDER_DLQ_URL", "NOTIFICATION_TOPIC_ARN")


@pytest.fixture
def forget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Path]:
    """Call to unset every database and endpoint setting and point the data directory at an
    empty one (no local system running there); returns that directory."""

    def apply() -> Path:
        for key in POINTERS:
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("ORDERFLOW_DATA_DIR", str(tmp_path))
        return tmp_path

    return apply


def _last_json(capsys: pytest.CaptureFixture[str]) -> Any:
    """The command's JSON answer (the last line of its output; log lines may come first)."""
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "command",
    [["order", str(uuid.uuid4())], ["stuck"], ["outbox"], ["notifications"], ["check"],
     ["dlq", "list"], ["emails"]],
)
def test_with_nothing_running_each_command_says_in_one_line_what_to_start_and_exits_2(
    forget, capsys, command
):
    forget()
    assert main(["admin", *command]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "make run" in err


def test_a_running_local_system_is_found_without_exports(system, forget, capsys):
    created, _ = order_service.create_order(order_request())
    env = {key: value for key, value in system.items() if key != "db"}
    env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    local_system.announce(env, forget())
    assert main(["admin", "--json", "order", created["order_id"]]) == 0
    assert _last_json(capsys)["order_id"] == created["order_id"]
    assert main(["admin", "--json", "dlq", "list"]) == 0
    assert _last_json(capsys) == []


def test_the_record_of_a_killed_local_system_is_ignored(system, forget, capsys):
    data_dir = forget()
    local_system.announce({"DATABASE_URL": system["db"].dsn}, data_dir)
    dead = subprocess.Popen(["true"])
    dead.wait()
    record = data_dir / local_system.STATE_FILE
    record.write_text(json.dumps({**json.loads(record.read_text()), "pid": dead.pid}))
    assert main(["admin", "stuck"]) == 2
    assert "make run" in capsys.readouterr().err


def test_the_record_is_removed_only_by_the_process_that_wrote_it(tmp_path):
    path = local_system.announce({"DATABASE_URL": "x"}, tmp_path)
    path.write_text(json.dumps({"pid": os.getppid(), "env": {}}))  # a newer system's record
    local_system.withdraw(tmp_path)
    assert path.exists()
    local_system.announce({"DATABASE_URL": "x"}, tmp_path)
    local_system.withdraw(tmp_path)
    assert not path.exists()


def test_an_unknown_order_is_one_line_and_exit_1(system, capsys):
    missing = str(uuid.uuid4())
    assert main(["admin", "order", missing]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == f"order {missing} does not exist"


def test_ctrl_c_on_notifications_follow_exits_130_without_a_traceback(system):
    order_service.create_order(order_request())
    follow = subprocess.Popen(
        [sys.executable, "-m", "processor", "admin", "notifications", "--follow"],
        cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        first = follow.stdout.readline()  # blocks until the first notification is printed
        assert "PENDING" in first
        follow.send_signal(signal.SIGINT)
        wait_until(lambda: follow.poll() is not None, timeout=10, what="the follow to stop")
        assert follow.returncode == 130
        assert "Traceback" not in follow.stderr.read()
    finally:
        follow.kill()
        follow.wait()


def test_an_unknown_stack_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    pulumi = tmp_path / "pulumi"  # the CLI's answer for a stack that does not exist
    pulumi.write_text("#!/bin/sh\necho \"error: no stack named 'nope' found\" >&2\nexit 255\n")
    pulumi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert main(["admin", "--stack", "nope", "stuck"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "pulumi stack output --stack nope failed: error: no stack named 'nope' found"
    ]
