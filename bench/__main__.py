"""`python -m bench [--scale F] [--only NAME ...] [--output PATH]`: run the benchmarks and
rewrite BENCHMARKS.md."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from bench.env import REPO, start_environment
from bench.runner import NAMES, run_benchmarks, say
from bench.sizes import FULL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of the full work (rows, orders, requests); e.g. 0.02 loads 20,000 orders",
    )
    parser.add_argument("--only", nargs="+", choices=NAMES, help="run only these benchmarks")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")

    say("[bench] starting PostgreSQL and moto ...")
    env = start_environment()
    try:
        sections = run_benchmarks(
            env,
            FULL.scaled(args.scale),
            args.output,
            args.only,
            shlex.join(["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])]),
        )
    finally:
        env.stop()
    failed = [s.title for s in sections if s.error]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
