"""Run the benchmarks in order, print progress, write BENCHMARKS.md (and .json)."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    cold_start,
    connections,
    create,
    http_api,
    listing,
    local_e2e,
    payment_hold,
    process,
    reconcile,
)
from bench.env import BenchEnv, configured, quiet_application_output
from bench.report import Section, machine_info, render, render_data
from bench.sizes import Sizes

BENCHMARKS: dict[str, Callable[[BenchEnv, Sizes], Section]] = {
    "create": create.run,
    "process": process.run,
    "http": http_api.run,
    "cold-start": cold_start.run,
    "listing": listing.run,
    "connections": connections.run,
    "local-e2e": local_e2e.run,
    "payment-hold": payment_hold.run,
    "reconcile": reconcile.run,
}
NAMES = tuple(BENCHMARKS)


def say(message: str) -> None:
    """Progress goes to the process's real stderr: sys.stdout and sys.stderr carry the
    service's JSON logs and the local servers' request logs, silenced while benchmarks run."""
    print(message, file=sys.__stderr__, flush=True)


def run_benchmarks(
    env: BenchEnv,
    sizes: Sizes,
    output: Path,
    only: list[str] | None = None,
    command: str = "python -m bench",
) -> list[Section]:
    sections: list[Section] = []
    # Settings the benchmarks assume unless they say otherwise: no simulated payment latency,
    # declines or delays, so the figures are about our code and the database.
    defaults = {
        **env.resources,
        "PAYMENT_LATENCY_MS": "0",
        "PAYMENT_DECLINE_RATE": "0",
        "PAYMENT_TRANSIENT_ERROR_RATE": "0",
        "FULFILMENT_DELAY_SECONDS": "0",
        "COMPLETION_DELAY_SECONDS": "0",
        "API_KEY": None,
    }
    with configured(**defaults), quiet_application_output():
        for name in only or NAMES:
            say(f"[bench] {name} ...")
            started = time.monotonic()
            try:
                section = BENCHMARKS[name](env, sizes)
            except Exception as error:
                traceback.print_exc(file=sys.__stderr__)
                section = Section(name, name, error=f"{type(error).__name__}: {error}")
            section.seconds = time.monotonic() - started
            sections.append(section)
            for figure in section.figures:
                ratio = f" ({figure.ratio:.2f}x)" if figure.ratio is not None else ""
                say(f"    {figure.name}: {figure.result}{ratio} {figure.verdict}")
            say(f"    done in {section.seconds:.0f} s")
    machine = machine_info(env.database_url)
    output.write_text(render(sections, machine, command))
    data = output.with_suffix(".json")
    data.write_text(render_data(sections, machine, command))
    say(f"[bench] wrote {output} and {data.name}")
    return sections
