"""Every finding the checker and the reconciler can report is declared once
(processor/domain/reconciliation.py) with what to do, and every declared kind can be reported:
the metric values, the alarm and the README table all come from that declaration."""

from __future__ import annotations

import ast
from pathlib import Path

from processor.domain.reconciliation import FINDING_KINDS, REPAIRABLE

REPO = Path(__file__).resolve().parents[2]
SOURCES = [REPO / "processor" / "ops" / "invariants.py",
           *sorted((REPO / "processor" / "reconciliation").glob("*.py"))]


def _reported() -> set[str]:
    """First string argument of every Finding(...), find(...) and repair(...) call."""
    kinds = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
                node.func, "id", "")
            first = node.args[0]
            if name in ("Finding", "find", "repair") and isinstance(first, ast.Constant):
                kinds.add(first.value)
    return kinds


def test_every_reported_kind_is_declared_and_every_declared_kind_is_reported() -> None:
    assert _reported() == set(FINDING_KINDS)


def test_every_kind_says_what_to_do_and_fix_names_only_repairable_ones() -> None:
    assert all(kind.action for kind in FINDING_KINDS.values())
    assert {"unsent_outbox", "capture_not_recorded", "refund_not_recorded",
                          "authorization_not_voided"} == REPAIRABLE


def test_the_readme_operate_section_tells_what_to_do_for_every_kind() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    operate = readme[readme.index("## Operate"):readme.index("## Limits")]
    for kind in FINDING_KINDS.values():
        fix = "yes" if kind.repairable else "no"
        assert f"| `{kind.name}` | {fix} | {kind.action} |" in operate, kind.name
