"""The tree's dependency rules, checked on the source: what the README's layout promises."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_db_imports_nothing_from_processor():
    offenders = [
        f"{path.relative_to(REPO)}: {module}"
        for path in (REPO / "db").rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] == "processor"
    ]
    assert offenders == []


def test_only_db_knows_the_database_driver_in_shipped_code():
    """Callers catch `db.errors`; a psycopg2 import elsewhere would couple them to the driver.

    processor/devstack/ is exempt: it never ships, and it administers the laptop's own server
    (creating databases), which is not what the product's callers do."""
    devstack = REPO / "processor" / "devstack"
    paths = [
        *(p for p in (REPO / "processor").rglob("*.py") if devstack not in p.parents),
        *(REPO / "chalice_app").rglob("*.py"),
    ]
    offenders = [
        str(path.relative_to(REPO))
        for path in paths
        if any(m.split(".")[0] == "psycopg2" for m in imported_modules(path))
    ]
    assert offenders == []


def test_the_domain_imports_nothing_with_io():
    for path in (REPO / "processor" / "domain").glob("*.py"):
        modules = imported_modules(path)
        assert not {m for m in modules if m.startswith(("db", "boto", "psycopg2"))}, path
        assert not {m for m in modules if m.startswith("processor.") and ".domain." not in m}


def test_every_package_init_is_import_free_so_handlers_load_only_what_they_use():
    for path in [*(REPO / "processor").rglob("__init__.py"), REPO / "db" / "__init__.py"]:
        body = ast.parse(path.read_text(encoding="utf-8")).body
        assert all(
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body
        ), f"{path.relative_to(REPO)} must hold only its docstring"


def test_shipped_code_never_imports_the_development_only_devstack():
    """processor/devstack/ is left out of deployment.zip and the worker image, so a shipped
    module importing it would fail in the cloud. Only `python -m processor local` and
    `admin emails` reach it (from processor/__main__.py), and they only run on a laptop."""
    devstack = REPO / "processor" / "devstack"
    offenders = [
        f"{path.relative_to(REPO)}: {module}"
        for path in [*(REPO / "processor").rglob("*.py"), *(REPO / "db").rglob("*.py"),
                     *(REPO / "chalice_app").rglob("*.py")]
        if devstack not in path.parents and path != REPO / "processor" / "__main__.py"
        for module in imported_modules(path)
        if module.startswith("processor.devstack")
    ]
    assert offenders == []


def test_benchmarks_import_no_tests_and_the_pulumi_program_imports_no_mocks():
    """bench/ and tests/ share the Pulumi mock runner through pulumi/orderflow_mocks/, which the
    deployed program (orderflow_infra) never imports."""
    offenders = [
        f"{path.relative_to(REPO)}: {module}"
        for folder, banned in (("bench", "tests"), ("pulumi/orderflow_infra", "orderflow_mocks"))
        for path in (REPO / folder).rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] == banned
    ]
    assert offenders == []


def test_notifications_are_built_from_their_own_view_not_the_apis():
    """An email or event must not change because an API response field did."""
    paths = [*(REPO / "processor" / "outbox").glob("*.py"),
             REPO / "processor" / "adapters" / "notifications.py"]
    offenders = [
        f"{path.relative_to(REPO)}: {module}"
        for path in paths
        for module in imported_modules(path)
        if module.startswith("processor.api")
    ]
    assert offenders == []
