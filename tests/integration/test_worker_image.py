"""The Fargate worker image, without Docker: replay processor/Dockerfile into a directory.

This machine has no Docker engine, so the test does what the Dockerfile does, instruction by
instruction: COPY the same sources (minus what processor/Dockerfile.dockerignore drops),
`pip install` the same requirements file into a fresh target directory, and run the image's
CMD from there with an interpreter that sees nothing else (`-S`: no venv site-packages).
A missing dependency, a module left out of the COPY lines or a broken entry point then fails
here, not on Fargate. An instruction the replay does not know fails the test, so the
Dockerfile cannot drift away from what is checked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from processor.orders import service as order_service
from tests.helpers import order_request, queue_depth, status_of, wait_until

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "processor" / "Dockerfile"
# RUN commands that change users or metadata, not the files the worker imports.
NON_FILE_RUNS = ("useradd ",)
# Cache flags only decide whether pip keeps a download; the replay may use the warm cache.
CACHE_FLAGS = frozenset({"--no-cache-dir"})


@dataclass
class Image:
    """A replayed image: its root, WORKDIR, site-packages, ENV and CMD."""

    root: Path
    workdir: Path = Path("/")
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)

    @property
    def site(self) -> Path:
        return self.root / "site-packages"

    def path(self, container_path: str) -> Path:
        """A container path (absolute, or relative to WORKDIR) inside the replay root."""
        target = Path(container_path)
        absolute = target if target.is_absolute() else self.workdir / target
        return self.root / absolute.relative_to("/")

    def argv(self, *args: str) -> list[str]:
        """The CMD's `python -m <module>` with `args`, on an interpreter isolated from the venv."""
        assert self.cmd[:2] == ["python", "-m"], f"unexpected CMD {self.cmd}"
        module = self.cmd[2]
        bootstrap = (
            "import runpy, site, sys; "
            f"site.addsitedir({str(self.site)!r}); "
            f"sys.argv = [{module!r}, *sys.argv[1:]]; "
            f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
        )
        return [sys.executable, "-S", "-c", bootstrap, *(args or self.cmd[3:])]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        return {**env, **self.env}


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def _ignored_names() -> list[str]:
    """`**/<name>` patterns of the Dockerfile's ignore file, as shutil ignore patterns."""
    ignore = Path(f"{DOCKERFILE}.dockerignore").read_text().splitlines()
    return [line[3:] for line in ignore if line.startswith("**/")]


def _copy(image: Image, sources: Sequence[str], destination: str) -> None:
    for source in sources:
        origin = REPO / source
        target = image.path(destination)
        if origin.is_dir():
            shutil.copytree(origin, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(*_ignored_names()))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)


def _pip_install(image: Image, args: list[str]) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--target", str(image.site), *(a for a in args if a not in CACHE_FLAGS)]
    result = subprocess.run(command, cwd=image.path("."), capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def replay(dockerfile: Path, root: Path) -> Image:
    """Build `dockerfile` into `root` as Docker would, minus the base image and users."""
    image = Image(root=root)
    for keyword, args in _instructions(dockerfile.read_text()):
        if keyword in ("FROM", "USER"):
            continue  # the base image is Python 3.11, as here; the user changes no files
        if keyword == "ENV":
            image.env.update(dict(item.split("=", 1) for item in shlex.split(args)))
        elif keyword == "WORKDIR":
            image.workdir = Path(args)
            image.path(".").mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            *sources, destination = args.split()
            _copy(image, sources, destination)
        elif keyword == "RUN" and args.startswith("pip install "):
            _pip_install(image, shlex.split(args)[2:])
        elif keyword == "RUN" and args.startswith(NON_FILE_RUNS):
            continue
        elif keyword == "CMD":
            image.cmd = json.loads(args)
        else:
            pytest.fail(f"processor/Dockerfile: teach this test `{keyword} {args}`")
    return image


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return replay(DOCKERFILE, tmp_path_factory.mktemp("image"))


def test_the_worker_image_pins_the_same_boto3_as_the_development_environment() -> None:
    def pin(path: Path) -> str:
        (line,) = [x for x in path.read_text().splitlines() if x.startswith("boto3==")]
        return line

    run_set = REPO / "requirements" / "run.txt"
    assert pin(REPO / "processor" / "worker-requirements.txt") == pin(run_set)


def test_the_image_runs_the_worker_from_its_own_files_only(image: Image) -> None:
    result = subprocess.run(image.argv("worker", "--help"), cwd=image.path("."),
                            env=image.environment(), capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "--wait-seconds" in result.stdout
    probe = ("import boto3, psycopg2, pydantic, db.connection, processor.entrypoints.worker; "
             "print('\\n'.join(m.__file__ for m in (boto3, psycopg2, pydantic, db.connection,"
             " processor.entrypoints.worker)))")
    where = subprocess.run(
        [sys.executable, "-S", "-c", f"import site; site.addsitedir({str(image.site)!r}); {probe}"],
        cwd=image.path("."), env=image.environment(), capture_output=True, text=True,
        timeout=60, check=False)
    assert where.returncode == 0, where.stderr
    files = [Path(line) for line in where.stdout.split()]
    assert files and all(image.root in path.parents for path in files), files


@pytest.mark.usefixtures("invariants_hold")
def test_the_image_processes_a_real_order_and_stops_cleanly_on_sigterm(
    image: Image, system: dict[str, Any],
) -> None:
    order_id = order_service.create_order(order_request("image@example.com"))[0]["order_id"]
    env = {**image.environment(), "METRICS_DISABLED": "1"}
    process = subprocess.Popen(
        image.argv("worker", "--concurrency=1", "--wait-seconds=1", "--sweep-interval=0"),
        cwd=image.path("."), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        wait_until(lambda: status_of(system["db"], order_id) == "COMPLETED", timeout=30,
                   what="the image's worker to complete the order")
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert queue_depth(system["ORDER_QUEUE_URL"]) == (0, 0)
