"""4. Lambda cold start: importing the packaged handler module, and the bundle's size.

The bundle is build/package/deployment.zip, rebuilt first with `make package` (the smoke test
uses it only if it matches the source); failing that, a stand-in built here the way the
packaging step lays it out (app.py and chalicelib/, vendored processor/ and db/, the runtime
requirements copied from this venv, Chalice's runtime module).
It is unpacked as shipped and imported with PYTHONDONTWRITEBYTECODE by a fresh venv's
interpreter (no site-packages), like Lambda's read-only /var/task, where nothing can be cached:
`make package` therefore ships .pyc files (compiled with unchecked hashes); the stand-in has
none. The baseline is the same interpreter running `pass`.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.env import REPO, BenchEnv
from bench.measure import median
from bench.report import Figure, Section, ms
from bench.sizes import Sizes

TARGET_ADDED_SECONDS = 0.250
# The library the hand-written logs, metrics and batch handling replace (processor.observability,
# processor.entrypoints.consumer): measured beside them in each run, so the reason not to use
# it stays a figure, not a memory.
POWERTOOLS = "aws-lambda-powertools==3.37.0"
POWERTOOLS_IMPORTS = {
    "Logger + Metrics": "from aws_lambda_powertools import Logger, Metrics",
    "BatchProcessor": "from aws_lambda_powertools.utilities.batch import BatchProcessor",
}
OURS = "import processor.observability"
POWERTOOLS_FIGURE = f"Not used: {POWERTOOLS}, what its imports add"
TARGET_ZIP_BYTES = 15 * 1024 * 1024
PACKAGED_ZIP = REPO / "build" / "package" / "deployment.zip"
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)")

# What a function does right after `import app`, in the same fresh process:
# "api": its first POST /orders (lazy imports, DB connect) and a few warm ones;
# "sqs": the imports of the SQS function's first batch, and whether they load pydantic.
FIRST_CALLS = """
import json, statistics, sys, time
import app
imported = time.perf_counter()
if sys.argv[2] == "sqs":
    import processor.entrypoints.consumer
    print(json.dumps({"first": time.perf_counter() - imported,
                      "pydantic": "pydantic" in sys.modules}))
    raise SystemExit
event = json.loads(sys.argv[1])
response = app.app(event, None)
first = time.perf_counter() - imported
assert response["statusCode"] == 201, response
warm = []
for _ in range(5):
    began = time.perf_counter()
    app.app(event, None)
    warm.append(time.perf_counter() - began)
print(json.dumps({"first": first, "warm": statistics.median(warm)}))
"""


def run(env: BenchEnv, sizes: Sizes) -> Section:
    section = Section("cold-start", "4. Lambda cold start")
    with tempfile.TemporaryDirectory(prefix="orderflow-cold-") as tmp:
        root = Path(tmp)
        if sizes.make_package:
            subprocess.run(["make", "package"], cwd=REPO, capture_output=True, check=False)
        bundle, archive, source = _bundle(root)
        python = _fresh_venv(root / "venv")
        runner = _Runner(python, bundle, env.database_url)
        samples: dict[str, list[float]] = {"pass": [], "import": []}
        for _ in range(sizes.cold_runs):
            samples["pass"].append(runner.wall(["-c", "pass"]))
            samples["import"].append(runner.wall(["-c", "import app"]))
        top = _import_breakdown(runner)
        api, sqs = runner.first_calls("api"), runner.first_calls("sqs")
        runner.cached = True  # from here on .pyc files are written and used
        runner.first_calls("api")
        cached_import = median([runner.wall(["-c", "import app"]) for _ in range(3)])
        cached_api = runner.first_calls("api")
        zip_bytes = archive.stat().st_size
        unpacked = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
        runner.cached = False
        powertools = (
            _powertools(runner, root / "powertools", sizes.cold_runs)
            if sizes.powertools
            else Figure(name=POWERTOOLS_FIGURE, result="not measured in this run")
        )

    base, total = median(samples["pass"]), median(samples["import"])
    added = total - base
    section.figures.append(
        replace(
            _import_figure(
                "`import app` in a fresh venv, bundle as shipped (as Lambda)", total, base
            ),
            target=f"< {TARGET_ADDED_SECONDS * 1000:.0f} ms added",
            passed=added < TARGET_ADDED_SECONDS,
        )
    )
    section.figures.append(
        _import_figure(
            "`import app` once the interpreter may write bytecode too", cached_import, base
        )
    )
    section.figures.append(
        Figure(
            name="API function: first POST /orders after import (lazy imports, DB connect)",
            result=f"{ms(api['first'])}; {ms(cached_api['first'])} with bytecode cached",
            baseline=f"warm request: {ms(api['warm'])}",
        )
    )
    section.figures.append(
        Figure(
            name="SQS function: imports of its first batch after `import app`",
            result=f"{ms(sqs['first'])}, pydantic {'loaded' if sqs['pydantic'] else 'not loaded'}",
        )
    )
    section.figures.append(
        Figure(
            name="Deployment zip",
            result=f"{zip_bytes / 2**20:.1f} MB ({unpacked / 2**20:.1f} MB unpacked)",
            target=f"< {TARGET_ZIP_BYTES / 2**20:.0f} MB",
            passed=zip_bytes < TARGET_ZIP_BYTES,
        )
    )
    section.figures.append(powertools)
    section.findings += [
        f"Bundle: {source}.",
        "Direct imports of app, cumulative (-X importtime, bundle as shipped): "
        + ", ".join(f"{name} {ms(seconds)}" for name, seconds in top)
        + ".",
        "Handlers import their modules on first call (chalice_app/app.py), so `import app` is"
        " Chalice plus the HTTP glue; the API function pays for pydantic and psycopg2 on its"
        f" first request ({ms(api['first'])}), the SQS function never loads pydantic."
        " `make package` compiles the bundle (`compileall --invalidation-mode"
        " unchecked-hash`): without .pyc files every cold start would compile every module"
        " it imports, as Lambda cannot write a bytecode cache.",
    ]
    if powertools.baseline != "—":
        section.findings.append(
            f"Powertools is not used: {powertools.result} to a cold start (imported in turns"
            f" with `pass` by the same fresh interpreter, load average {os.getloadavg()[0]:.1f}"
            f" on {os.cpu_count()} cores), where {powertools.baseline}; so"
            " logs, EMF metrics and the SQS partial-batch response are written by hand"
            " (processor/observability.py, processor/entrypoints/consumer.py)."
        )
    return section


def _powertools(runner: _Runner, target: Path, runs: int) -> Figure:
    """What Powertools' Logger + Metrics and BatchProcessor would add to a cold start, beside
    the module that writes our logs and metrics: each imported by the same fresh interpreter,
    in turns with `pass`, in CPU time (a busy machine inflates wall time, not this). Our SQS
    batch handling is part of the consumer module the function loads anyway, so
    BatchProcessor's figure is all extra.

    Powertools is installed (with its dependencies, compiled) into `target` only for this
    figure; without the package index the figure says so instead."""
    name = POWERTOOLS_FIGURE
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--target", str(target), POWERTOOLS],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if installed.returncode != 0:
        last = (installed.stderr.strip().splitlines() or ["no output"])[-1]
        return Figure(name=name, result=f"not measured: pip could not install it ({last})")
    runner.env = {**runner.env, "PYTHONPATH": os.pathsep.join([str(runner.bundle), str(target)])}
    statements = {"pass": "pass", "ours": OURS, **POWERTOOLS_IMPORTS}
    samples: dict[str, list[float]] = {key: [] for key in statements}
    for _ in range(runs):
        for key, statement in statements.items():
            samples[key].append(runner.cpu(["-c", statement]))
    base = median(samples["pass"])
    added = {key: median(samples[key]) - base for key in statements if key != "pass"}
    return Figure(
        name=name,
        result=", ".join(f"{key} +{ms(added[key])}" for key in POWERTOOLS_IMPORTS)
        + " (CPU time)",
        baseline=f"`{OURS.removeprefix('import ')}`: +{ms(added['ours'])}",
    )


class _Runner:
    """Runs the fresh venv's interpreter on the bundle, as Lambda's runtime would."""

    def __init__(self, python: str, bundle: Path, database_url: str) -> None:
        self.python, self.bundle, self.cached = python, bundle, False
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(bundle),
            "AWS_DEFAULT_REGION": "us-east-1",
            "DATABASE_URL": database_url,
            "METRICS_DISABLED": "1",
        }

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        env = self.env if self.cached else {**self.env, "PYTHONDONTWRITEBYTECODE": "1"}
        return subprocess.run(
            [self.python, *args],
            env=env,
            cwd=self.bundle,
            capture_output=True,
            text=True,
            check=True,
        )

    def wall(self, args: list[str]) -> float:
        started = time.perf_counter()
        self._run(args)
        return time.perf_counter() - started

    def cpu(self, args: list[str]) -> float:
        """CPU seconds (user + system) of one run: steadier than wall time when other work
        shares the machine's cores, as it does on a busy CI runner."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._run(args)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    def stderr(self, args: list[str]) -> str:
        return self._run(args).stderr

    def first_calls(self, kind: str) -> dict[str, Any]:
        from bench.handlers import order_body, proxy_event, to_json

        event = proxy_event("POST", "/orders", body=to_json(order_body(3)))
        output = self._run(["-c", FIRST_CALLS, json.dumps(event), kind]).stdout
        result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
        return result


def _import_figure(name: str, total: float, base: float) -> Figure:
    """An `import app` wall time against `python -c pass`: what importing adds is the figure
    that matters, as every cold start pays the bare interpreter start anyway."""
    return Figure(
        name=name,
        result=f"+{ms(total - base)} ({ms(total)} total)",
        baseline=f"`python -c pass`: {ms(base)}",
        ratio=total / base,
    )


def _fresh_venv(path: Path) -> str:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return str(path / "bin" / "python")


def _bundle(root: Path) -> tuple[Path, Path, str]:
    """Unpacked bundle directory, its zip, and where it came from."""
    bundle = root / "bundle"
    packaged = f"`{PACKAGED_ZIP.relative_to(REPO)}`"
    if PACKAGED_ZIP.exists():
        with zipfile.ZipFile(PACKAGED_ZIP) as archive:
            archive.extractall(bundle)
        if _is_current(bundle):
            return bundle, PACKAGED_ZIP, f"{packaged} from `make package`"
        shutil.rmtree(bundle)
        packaged += " is older than the source, so"
    else:
        packaged += " not found, so"
    _stand_in(bundle)
    archive_path = root / "deployment.zip"
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(bundle.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(bundle))
    return (
        bundle,
        archive_path,
        f"{packaged} a stand-in built by the benchmark: app.py, chalicelib/, vendored"
        " processor/ and db/, runtime requirements from this venv, Chalice's runtime module,"
        " no .pyc files",
    )


def _is_current(bundle: Path) -> bool:
    """Whether the unpacked bundle holds the current source of app, chalicelib, processor, db."""
    sources = [REPO / "chalice_app" / "app.py", *(REPO / "chalice_app").glob("chalicelib/*.py")]
    sources += [*REPO.glob("processor/**/*.py"), *REPO.glob("db/*.py")]
    sources = [s for s in sources if "devstack" not in s.parts]  # development only, not shipped
    for source in sources:
        relative = source.relative_to(REPO)
        if relative.parts[0] == "chalice_app":
            relative = relative.relative_to("chalice_app")
        packed = bundle / relative
        if not packed.exists() or packed.read_bytes() != source.read_bytes():
            return False
    return True


def _stand_in(bundle: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    source = REPO / "chalice_app"
    bundle.mkdir(parents=True)
    shutil.copy2(source / "app.py", bundle / "app.py")
    shutil.copytree(source / "chalicelib", bundle / "chalicelib", ignore=ignore)
    for package in ("processor", "db"):
        shutil.copytree(REPO / package, bundle / package, ignore=ignore)
    shutil.rmtree(bundle / "processor" / "devstack")  # as `make package`: never shipped
    chalice = Path(metadata.distribution("chalice").locate_file("chalice"))
    (bundle / "chalice").mkdir()
    for name in ("__init__.py", "app.py"):
        shutil.copy2(chalice / name, bundle / "chalice" / name)
    for name in _runtime_distributions(source / "requirements.txt"):
        for file in metadata.distribution(name).files or []:
            if file.suffix == ".pyc" or "__pycache__" in file.parts or ".." in file.parts:
                continue
            if file.parts[0].endswith((".dist-info", ".data")):
                continue
            target = bundle / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(file.locate()), target)


def _runtime_distributions(requirements: Path) -> list[str]:
    """The requirements and their dependencies (ignoring extras), as installed here."""
    pending = [
        match.group(1)
        for line in requirements.read_text().splitlines()
        if (match := _REQUIREMENT.match(line))
    ]
    seen: dict[str, None] = {}
    while pending:
        name = pending.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen[name] = None
        for requirement in metadata.requires(name) or []:
            if "extra ==" in requirement:
                continue
            match = _REQUIREMENT.match(requirement)
            if match:
                pending.append(match.group(1))
    return list(seen)


def _import_breakdown(runner: _Runner) -> list[tuple[str, float]]:
    """Direct imports of `app` with their cumulative seconds, largest first."""
    output = runner.stderr(["-X", "importtime", "-c", "import app"])
    children: list[tuple[str, float]] = []
    for line in output.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( +)(\S+)", line)
        if match and len(match.group(2)) == 3:  # one level below `app`
            children.append((match.group(3), int(match.group(1)) / 1e6))
    return sorted(children, key=lambda item: -item[1])[:6]
