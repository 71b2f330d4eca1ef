"""The CI/CD workflow: valid for GitHub, and deploying the way README.md ("Deploy") says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml")
                for p in REPO_ROOT.glob("Pulumi.*.yaml"))


def _workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def _uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(f"{action}@")]


def test_the_workflow_matches_githubs_schema() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("check-jsonschema")), "--builtin-schema",
         "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pull_requests_run_the_tests_and_preview_every_stack() -> None:
    workflow = _workflow()
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "pull_request" in triggers
    jobs = workflow["jobs"]
    assert [step["run"] for step in jobs["test"]["steps"] if "run" in step][-1] == "make test"
    assert "if" not in jobs["test"]
    preview = jobs["preview"]
    assert preview["if"] == "github.event_name == 'pull_request'"
    assert preview["needs"] == "test"
    assert sorted(preview["strategy"]["matrix"]["stack"]) == STACKS == ["dev", "prod"]
    (pulumi,) = _uses(preview, "pulumi/actions")
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["stack-name"].endswith("/orderflow/${{ matrix.stack }}")


def test_dev_deploys_from_main_and_prod_from_a_tag_or_by_hand_after_approval() -> None:
    workflow = _workflow()
    assert workflow[True]["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert "workflow_dispatch" in workflow[True]
    jobs = workflow["jobs"]
    dev, prod = jobs["deploy-dev"], jobs["deploy-prod"]
    assert dev["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert prod["if"] == ("startsWith(github.ref, 'refs/tags/v') || "
                          "github.event_name == 'workflow_dispatch'")
    assert (dev["environment"], prod["environment"]) == ("dev", "prod")
    for job, stack in ((dev, "dev"), (prod, "prod")):
        assert job["needs"] == "test"
        assert job["concurrency"] == {"group": f"pulumi-up-{stack}", "cancel-in-progress": False}
        (pulumi,) = _uses(job, "pulumi/actions")
        assert pulumi["with"] == {"command": "up",
                                  "stack-name": f"${{{{ vars.PULUMI_ORG }}}}/orderflow/{stack}"}


def test_credentials_come_from_oidc_roles_never_from_stored_keys() -> None:
    workflow = _workflow()
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        aws = _uses(job, "aws-actions/configure-aws-credentials")
        if not _uses(job, "pulumi/actions"):
            assert not aws, name
            continue
        assert job["permissions"]["id-token"] == "write", name
        (step,) = aws
        assert set(step["with"]) == {"role-to-assume", "aws-region"}, name
        (auth,) = _uses(job, "pulumi/auth-actions")
        assert auth["with"]["requested-token-type"].startswith("urn:pulumi:token-type:"), name
    text = WORKFLOW.read_text()
    assert "secrets." not in text
    assert "aws-access-key-id" not in text and "PULUMI_ACCESS_TOKEN" not in text
