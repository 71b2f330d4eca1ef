"""The update simulator over every config key: each change keeps the stack's rules, and the
README's "What changing a setting does" is what the simulator says today."""

from __future__ import annotations

import pytest

from tests.infra.simulator import violations
from tests.infra.stack_changes import (
    CHANGES,
    REPO_ROOT,
    Row,
    config_keys,
    replace_section,
    run_changes,
)

# About 50 simulated updates (two runs of the program each, under mocks): ~25 s of CPU,
# counted in the first test that asks for them.
SIMULATION_TIMEOUT = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return list(run_changes())


def test_the_change_table_covers_every_config_key_and_both_stack_files() -> None:
    assert {change.key for change in CHANGES} == config_keys()
    assert {change.stack for change in CHANGES} == {"dev", "prod"}
    for key, there, back in (("processor", "fargate", "lambda"),
                             ("db_engine", "aurora-serverless", "rds")):
        assert {c.to for c in CHANGES if c.key == key} >= {there, back}, key


@SIMULATION_TIMEOUT
def test_no_simulated_change_breaks_a_rule_of_the_stack(rows: list[Row]) -> None:
    broken = {row.change.label(): violations(row.outcome.plan)
              for row in rows if row.outcome.plan is not None}
    assert {label: found for label, found in broken.items() if found} == {}


@SIMULATION_TIMEOUT
def test_only_what_aws_refuses_is_refused(rows: list[Row]) -> None:
    refused = {row.change.label() for row in rows if row.outcome.refused is not None}
    assert refused == {"`db_engine_version`: 17 → 16 (dev)",
                       "`db_allocated_storage_gb`: 50 → 30 (prod)"}


@SIMULATION_TIMEOUT
def test_the_readme_section_is_current(rows: list[Row]) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert replace_section(readme, rows) == readme, \
        "README.md's \"What changing a setting does\" is stale: run `make stack-changes`"
