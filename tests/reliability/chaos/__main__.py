"""`python -m tests.reliability.chaos run [--scale small|large] [--output FILE] [--keep]`: every
scenario of a scale against one fresh stack, then the report (exit 1 on any violation).
`serve-api --port N` is the API process the stack starts."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.reliability.chaos.audit import Outcome
from tests.reliability.chaos.report import render_markdown
from tests.reliability.chaos.scenarios.database_outage import database_outage_beyond_retries
from tests.reliability.chaos.scenarios.database_restart import database_restart
from tests.reliability.chaos.scenarios.idempotency_storm import idempotency_storm
from tests.reliability.chaos.scenarios.poison_batch import poison_batch
from tests.reliability.chaos.scenarios.queue_outage import queue_outage
from tests.reliability.chaos.scenarios.worker_kill import worker_kill
from tests.reliability.chaos.scenarios.worker_massacre import worker_massacre
from tests.reliability.chaos.stack import REPO, Stack

Scenario = Callable[..., Outcome]

# The scenarios of each scale, in order, with their arguments. `large` is what `make chaos`
# runs (about 4 minutes); `small` takes under a minute.
SCALES: dict[str, list[tuple[Scenario, dict[str, Any]]]] = {
    "small": [
        (idempotency_storm, {}),
        (database_restart, {}),
        (queue_outage, {}),
        (worker_kill, {"phase": "charging"}),
        (worker_kill, {"phase": "fulfilling"}),
        (poison_batch, {}),
    ],
    "large": [
        (idempotency_storm, {"requests": 1000, "keys": 100, "keyed_share": 0.8, "threads": 48}),
        (database_restart, {"before": 100, "after": 100, "outage_seconds": 3, "clients": 8}),
        (database_restart, {"before": 50, "after": 50, "outage_seconds": 6, "clients": 8}),
        (database_outage_beyond_retries, {"orders": 20}),
        (queue_outage, {"in_flight": 50, "during": 100, "outage_seconds": 5}),
        (worker_kill, {"phase": "charging"}),
        (worker_kill, {"phase": "fulfilling"}),
        (worker_massacre, {"orders": 300, "kills": 15}),
        (poison_batch, {"good": 10}),
    ],
}


def run_all(scale: str, root: Path) -> list[Outcome]:
    """Every scenario of `scale` in turn on one stack, a worker running at each start."""
    outcomes = []
    with Stack(root) as stack:
        for scenario, kwargs in SCALES[scale]:
            stack.ensure_worker()
            print(f"- {scenario.__name__} {kwargs}", flush=True)
            try:
                outcome = scenario(stack, **kwargs)
            except Exception as error:  # a broken scenario is a finding, not the end of the run
                outcome = Outcome(
                    scenario.__name__, str(kwargs), violations=[f"{type(error).__name__}: {error}"]
                )
            outcomes.append(outcome)
            print(f"  {outcome.figures} violations={outcome.violations}", flush=True)
    return outcomes


def serve_api(port: int) -> None:
    """The API alone, as `make run` serves it, until SIGTERM."""
    from processor.devstack.local import start_api

    server = start_api("127.0.0.1", port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.chaos", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve-api")
    serve.add_argument("--port", type=int, required=True)
    run = commands.add_parser("run")
    run.add_argument("--scale", choices=sorted(SCALES), default="large")
    run.add_argument("--output", type=Path, default=REPO / "RELIABILITY.md")
    run.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args(argv or ["run"])
    if args.command == "serve-api":
        serve_api(args.port)
        return 0
    root = Path(tempfile.mkdtemp(prefix="orderflow-chaos-"))
    started = time.monotonic()
    try:
        outcomes = run_all(args.scale, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    args.output.write_text(
        render_markdown(outcomes, args.scale, time.monotonic() - started), encoding="utf-8"
    )
    failed = [o for o in outcomes if o.violations]
    print(f"wrote {args.output}; {len(failed)} scenario(s) with violations")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
