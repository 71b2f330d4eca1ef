"""The chalice artifact contract: located, validated, and (slow) really built by make."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

from orderflow_infra.packaging import (
    DEFAULT_ARTIFACT_DIR,
    HANDLERS,
    REPO_ROOT,
    ArtifactError,
    load_artifact,
    locate_artifact,
    render_swagger,
)
from orderflow_mocks.harness import write_fake_artifact
from tests.helpers import development_only

# Only a failure to reach the package index skips the real build; anything else fails it.
OFFLINE = re.compile(r"NewConnectionError|Temporary failure in name resolution|"
                     r"Name or service not known|Network is unreachable|Max retries exceeded")
# What the Lambda python3.11 runtime provides besides the zip.
LAMBDA_RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil",
                           "urllib3", "six.py")


def test_an_explicit_artifact_dir_is_never_built_and_missing_files_are_named(
        tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"deployment.zip not found; run `make package`"):
        locate_artifact(str(tmp_path))


def test_a_template_without_a_contract_handler_is_refused(tmp_path: Path) -> None:
    write_fake_artifact(tmp_path)
    sam = json.loads((tmp_path / "sam.json").read_text())
    del sam["Resources"]["Migrate"]
    (tmp_path / "sam.json").write_text(json.dumps(sam))
    with pytest.raises(ArtifactError, match=r"no function with handler 'app\.migrate'"):
        load_artifact(tmp_path)


def _lambda_runtime_dir(target: Path) -> Path:
    """A directory with only the packages AWS's python3.11 runtime ships."""
    site = Path(boto3.__file__).parent.parent
    target.mkdir()
    for name in LAMBDA_RUNTIME_PACKAGES:
        (target / name).symlink_to(site / name)
    return target


@pytest.mark.slow
def test_make_package_builds_a_zip_of_product_code_only_whose_handlers_import(
    tmp_path: Path,
) -> None:
    result = subprocess.run(["make", "-C", str(REPO_ROOT), "package"], capture_output=True,
                            text=True, timeout=600, check=False)
    output = result.stdout + result.stderr
    if result.returncode != 0 and OFFLINE.search(output):
        pytest.skip(f"chalice package could not reach the package index:\n{output[-2000:]}")
    assert result.returncode == 0, output

    artifact = load_artifact(REPO_ROOT / DEFAULT_ARTIFACT_DIR)  # checks every handler exists
    assert artifact.runtime(HANDLERS.api) == "python3.11"
    assert artifact.schedule(HANDLERS.sweep_outbox) == "rate(1 minute)"
    body = render_swagger(artifact.swagger, "arn:invoke", api_key_required=True)
    assert "/orders" in body["paths"]
    assert "Fn::Sub" not in json.dumps(body)
    code = tmp_path / "code"
    with zipfile.ZipFile(artifact.zip_path) as archive:
        archive.extractall(code)
        shipped = archive.namelist()
        assert development_only(shipped) == []
        assert "processor/entrypoints/worker.py" in shipped
        swagger_ui = {Path(n).name for n in archive.namelist()
                      if n.startswith("swagger_ui_bundle/") and not n.endswith((".pyc", "/"))}
    # Only what /docs uses: the package's source maps and other builds would double the zip.
    assert swagger_ui == {"__init__.py", "swagger-ui-bundle.js", "swagger-ui.css"}
    runtime = _lambda_runtime_dir(tmp_path / "runtime")
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import app\n"
        "for name in sys.argv[3:]:\n"
        "    assert callable(getattr(app, name)), name\n"
        # /docs renders from the two Swagger UI assets `make package` vendors, nothing else.
        "from chalicelib.docs import page\n"
        "assert page().count(';base64,') == 2\n"
    )
    names = [h.removeprefix("app.") for h in HANDLERS.all()]
    env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "eu-west-1",
           "DB_HOST": "db.invalid", "DB_NAME": "orderflow", "APP_ENV": "test"}
    # -S: no site-packages, so only the zip and the Lambda runtime's packages are importable.
    imported = subprocess.run([sys.executable, "-S", "-c", probe, str(code), str(runtime),
                               *names], capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=120, check=False)
    assert imported.returncode == 0, imported.stderr
