"""The Fargate worker image, without Docker: replay pulumi/worker-image/Dockerfile in a folder.

This machine has no Docker engine, so the test does what the Dockerfile does, instruction by
instruction: COPY the same sources (minus what pulumi/worker-image/Dockerfile.dockerignore drops),
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
from tests.helpers import development_only, order_request, queue_depth, status_of, wait_until

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "pulumi" / "worker-image" / "Dockerfile"
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


def _ignore_lines() -> list[str]:
    lines = Path(f"{DOCKERFILE}.dockerignore").read_text().splitlines()
    return [line for line in lines if line and not line.startswith(("#", "!")) and line != "*"]


def _ignored(directory: str, names: list[str]) -> set[str]:
    """The ignore file's `**/<name>` and `<path>/` patterns, as a shutil.copytree ignore."""
    patterns = [line[3:] for line in _ignore_lines() if line.startswith("**/")]
    paths = {REPO / line.rstrip("/") for line in _ignore_lines() if not line.startswith("**/")}
    dropped = set(shutil.ignore_patterns(*patterns)(directory, names))
    return dropped | {name for name in names if Path(directory, name) in paths}


def _copy(image: Image, sources: Sequence[str], destination: str) -> None:
    for source in sources:
        origin = REPO / source
        target = image.path(destination)
        if origin.is_dir():
            shutil.copytree(origin, target, dirs_exist_ok=True, ignore=_ignored)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)


def _run_with_mounts(image: Image, args: str) -> None:
    """`RUN --mount=type=bind,source=S,target=T ... pip install ...`: the mounted files exist
    for that command only, as with BuildKit, so they are removed again afterwards."""
    words = shlex.split(args)
    mounts = [dict(item.split("=", 1) for item in w.removeprefix("--mount=").split(","))
              for w in words if w.startswith("--mount=")]
    targets = {m["target"] for m in mounts}
    command = [str(image.path(w)) if w in targets else w
               for w in words if not w.startswith("--mount=")]
    assert all(m["type"] == "bind" for m in mounts), mounts
    for mount in mounts:
        _copy(image, [mount["source"]], mount["target"])
    try:
        assert command[:2] == ["pip", "install"], f"teach this test `RUN {args}`"
        _pip_install(image, command[2:])
    finally:
        for mount in mounts:
            image.path(mount["target"]).unlink()


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
        elif keyword == "RUN" and args.startswith("--mount="):
            _run_with_mounts(image, args)
        elif keyword == "RUN" and args.startswith(NON_FILE_RUNS):
            continue
        elif keyword == "CMD":
            image.cmd = json.loads(args)
        else:
            pytest.fail(f"pulumi/worker-image/Dockerfile: teach this test `{keyword} {args}`")
    return image


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return replay(DOCKERFILE, tmp_path_factory.mktemp("image"))


def test_the_worker_image_pins_the_same_boto3_as_the_development_environment() -> None:
    def pin(path: Path) -> str:
        (line,) = [x for x in path.read_text().splitlines() if x.startswith("boto3==")]
        return line

    assert pin(DOCKERFILE.with_name("requirements.txt")) == pin(REPO / "requirements.txt")


def test_the_image_holds_the_product_code_only_without_development_or_build_files(
    image: Image,
) -> None:
    workdir = image.path(".")
    files = sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*") if p.is_file())
    assert {name.split("/")[0] for name in files} == {"db", "processor"}
    assert "processor/entrypoints/worker.py" in files
    assert development_only(files) == []
    elsewhere = [p for p in image.root.rglob("*") if p.is_file()
                 and image.site not in p.parents and workdir not in p.parents]
    assert elsewhere == []  # the bind-mounted requirements are gone with their RUN


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
