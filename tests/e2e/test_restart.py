"""A restart of the local system finishes what the last run left unfinished: its queues died
with the emulator, so the start re-queues every unfinished order the database holds."""

from __future__ import annotations

import os
import sys

from processor.devstack.local import free_port
from processor.orders import service as order_service
from tests.e2e.test_local_stack import REPO, Group
from tests.helpers import advance_to, order_request, status_of, wait_until


def test_an_order_left_processing_by_an_earlier_run_completes_after_the_start(
    tmp_path, system
):
    created, _ = order_service.create_order(order_request())
    advance_to(created["order_id"], "PROCESSING")  # its message is in another emulator
    env = {**os.environ, "MOTO_PORT": "0", "PYTHONUNBUFFERED": "1",
           "ORDERFLOW_DATA_DIR": str(tmp_path / "local")}
    env.pop("AWS_ENDPOINT_URL")
    local = Group([sys.executable, "-m", "processor", "local", "--services-only", "--no-reload",
                   "--port", str(free_port())], env, cwd=REPO)
    try:
        banner = local.wait_ready()
        assert "re-queued 1 unfinished order(s) of an earlier run" in banner
        wait_until(lambda: status_of(system["db"], created["order_id"]) == "COMPLETED",
                   timeout=30, what="the re-queued order to complete")
    finally:
        local.kill()
