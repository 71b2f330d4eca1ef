"""Find (or build) the `chalice package` artifact and turn its SAM template into inputs.

The deployed code is exactly what `make package` produced: `deployment.zip` plus chalice's
default SAM template `sam.json`, from which the handlers, runtime, schedule and REST API
swagger are read so the infrastructure follows the app instead of restating it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ARTIFACT_DIR = "build/package"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch"})
API_KEY_SCHEME = {"type": "apiKey", "name": "x-api-key", "in": "header"}
# The provider's webhook (chalice_app/app.py): Stripe holds no API key; the signature it sends
# is what the app checks instead.
WEBHOOK_PATH = "/webhooks/stripe"
# Routes served without an API key even when keys are required: the API's own reference,
# readable by anyone who is about to ask for a key, and the webhook. Paths absent from the app
# are ignored.
PUBLIC_PATHS = frozenset({"/openapi.json", "/docs", WEBHOOK_PATH})
PATH_TEMPLATE = re.compile(r"\{([^}+]+)\+?\}")
# What the zip (and the worker image) are built from; `make package` records their
# fingerprint next to the zip, so an artifact left from another tree is not deployed.
SOURCE_DIRS = ("chalice_app", "db", "processor")
FINGERPRINT_FILE = "source.sha256"
# The security definition chalice names after the `@app.authorizer` function.
AUTHORIZER_NAME = "jwt_auth"


@dataclass(frozen=True)
class AuthorizerTarget:
    """Where the JWT authorizer runs in the stack (its function's invoke ARN) and how long
    API Gateway caches its verdict per token."""

    invoke_arn: str
    ttl_seconds: int


class ArtifactError(pulumi.RunError):
    """The chalice artifact is missing or does not match the contract with chalice_app/."""


@dataclass(frozen=True)
class Handlers:
    """Handler strings in the zip; the names are the contract with chalice_app/app.py."""

    api: str = "app.app"
    process_orders: str = "app.process_orders"
    sweep_outbox: str = "app.sweep_outbox"
    migrate: str = "app.migrate"
    # The JWT authorizer (chalice's built-in authorizer); `make package` always includes it.
    jwt_auth: str = "app.jwt_auth"
    reconcile: str = "app.reconcile"

    def all(self) -> tuple[str, ...]:
        return (self.api, self.process_orders, self.sweep_outbox, self.migrate, self.reconcile)


HANDLERS = Handlers()


@dataclass(frozen=True)
class ChaliceArtifact:
    """A loaded artifact: zip path, content hash and the parsed SAM template."""

    zip_path: Path
    sha256: str
    template: dict[str, Any]

    def function(self, handler: str) -> dict[str, Any]:
        """SAM properties of the function whose Handler is `handler`."""
        for resource in self.template["Resources"].values():
            props = resource.get("Properties", {})
            if resource.get("Type") == "AWS::Serverless::Function" and \
                    props.get("Handler") == handler:
                return dict(props)
        raise ArtifactError(f"{self.zip_path.parent / 'sam.json'} has no function with "
                            f"handler {handler!r}")

    def runtime(self, handler: str) -> str:
        return str(self.function(handler)["Runtime"])

    def schedule(self, handler: str) -> str:
        """The schedule expression chalice generated from `@app.schedule`."""
        events = self.function(handler).get("Events", {})
        for event in events.values():
            if event.get("Type") == "Schedule":
                return str(event["Properties"]["Schedule"])
        raise ArtifactError(f"{handler} has no @app.schedule event in sam.json")

    @property
    def swagger(self) -> dict[str, Any]:
        """The REST API definition chalice generated (still with CloudFormation references)."""
        try:
            body = self.template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
        except KeyError:
            raise ArtifactError("sam.json has no Resources.RestAPI.Properties.DefinitionBody; "
                                "chalice_app/app.py must define routes") from None
        return dict(body)


def load_artifact(directory: Path) -> ChaliceArtifact:
    """Load and check an artifact directory; every handler in the contract must be present."""
    zip_path, sam_path = directory / "deployment.zip", directory / "sam.json"
    for path in (zip_path, sam_path):
        if not path.is_file():
            raise ArtifactError(f"{path} not found; run `make package` first")
    with zipfile.ZipFile(zip_path) as archive:
        if "app.py" not in archive.namelist():
            raise ArtifactError(f"{zip_path} has no app.py at its root; is it a chalice package?")
    artifact = ChaliceArtifact(
        zip_path=zip_path,
        sha256=hashlib.sha256(zip_path.read_bytes()).hexdigest(),
        template=json.loads(sam_path.read_text()),
    )
    for handler in HANDLERS.all():
        artifact.function(handler)
    return artifact


def source_fingerprint(root: Path = REPO_ROOT) -> str:
    """SHA-256 over the paths and contents of SOURCE_DIRS (bytecode caches left out)."""
    digest = hashlib.sha256()
    for directory in SOURCE_DIRS:
        for path in sorted((root / directory).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(path.relative_to(root).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _recorded_fingerprint(directory: Path) -> str | None:
    path = directory / FINGERPRINT_FILE
    return path.read_text().strip() if path.is_file() else None


def _make_package(directory: Path, why: str) -> None:
    make = shutil.which("make")
    if make is None:
        raise ArtifactError(f"{directory} {why} and `make` is not installed; build the "
                            "artifact with `make package` on a machine that has it")
    pulumi.log.info(f"{directory} {why}; running `make package`")
    # Fixed argv, no shell and no user input.
    result = subprocess.run([make, "-C", str(REPO_ROOT), "package"], check=False)  # noqa: S603
    if result.returncode != 0:
        raise ArtifactError(f"`make package` failed (exit {result.returncode}); run it "
                            "in the repository root and fix the error, then retry")


def locate_artifact(artifact_dir: str) -> ChaliceArtifact:
    """Load the artifact; build it with `make package` if the default location is empty or
    was built from another tree (the image is built from this one, and migrations run when
    the zip changes: a stale zip would deploy old code and skip a migration).

    A non-default directory is never built: it is an explicit choice (tests use a fake one).
    It is refused if it records a fingerprint of another tree.
    """
    directory = Path(artifact_dir)
    if not directory.is_absolute():
        directory = REPO_ROOT / directory
    tree = source_fingerprint()
    if artifact_dir == DEFAULT_ARTIFACT_DIR:
        if not (directory / "deployment.zip").is_file():
            _make_package(directory, "is empty")
        elif _recorded_fingerprint(directory) != tree:
            _make_package(directory, "was built from another tree")
    recorded = _recorded_fingerprint(directory)
    if recorded is not None and recorded != tree:
        raise ArtifactError(f"{directory} was built from another tree than this one "
                            f"({FINGERPRINT_FILE} differs); run `make package` again")
    return load_artifact(directory)


def _declare_path_parameters(path: str, operation: dict[str, Any]) -> None:
    """Declare every `{name}` of the path on the operation, as Swagger 2.0 requires.

    Chalice's CORS preflight (OPTIONS) operations omit them; API Gateway tolerates that, but
    the body would then not be valid Swagger and validators could not vouch for the rest.
    """
    declared = {p.get("name") for p in operation.get("parameters", []) if p.get("in") == "path"}
    for name in PATH_TEMPLATE.findall(path):
        if name not in declared:
            operation.setdefault("parameters", []).append(
                {"name": name, "in": "path", "required": True, "type": "string"})


def _apply_authorizer(body: dict[str, Any], authorizer: AuthorizerTarget | None) -> None:
    """`auth: jwt`: point chalice's authorizer definition at the stack's function with the
    configured cache TTL. `auth: api_key`: drop it (and its use on every operation)."""
    definitions = body.get("securityDefinitions", {})
    definition = definitions.get(AUTHORIZER_NAME)
    if authorizer is None:
        definitions.pop(AUTHORIZER_NAME, None)
        if not definitions:
            body.pop("securityDefinitions", None)
        for item in body.get("paths", {}).values():
            for operation in item.values():
                if isinstance(operation, dict) and "security" in operation:
                    operation["security"] = [s for s in operation["security"]
                                             if AUTHORIZER_NAME not in s]
                    if not operation["security"]:
                        del operation["security"]
        return
    if definition is None:
        raise ArtifactError("auth is jwt but the chalice swagger has no jwt_auth authorizer; "
                            "rebuild with `make package`")
    settings = definition["x-amazon-apigateway-authorizer"]
    settings["authorizerUri"] = authorizer.invoke_arn
    settings["authorizerResultTtlInSeconds"] = authorizer.ttl_seconds


def render_swagger(swagger: dict[str, Any], invoke_arn: str, api_key_required: bool,
                   authorizer: AuthorizerTarget | None = None) -> dict[str, Any]:
    """Chalice's swagger with the API Lambda's invoke ARN and, if asked, API-key security.

    With `authorizer` (auth: jwt) the order routes are guarded by the JWT authorizer instead
    of the API key: customers have no API key, and API Gateway would require both.

    Chalice's SAM swagger points every integration at `${APIHandler.Arn}` via `Fn::Sub`; any
    other uri means the template changed shape, so fail rather than deploy a broken API.
    CORS preflight (`mock` integrations) stays keyless so browsers can ask first, and so do
    PUBLIC_PATHS: API Gateway asks for a key exactly where an operation lists `api_key`
    under `security`, so those operations get none (even if chalice put one there).
    """
    body = copy.deepcopy(swagger)
    _apply_authorizer(body, authorizer)
    api_key_required = api_key_required and authorizer is None
    for path, item in body.get("paths", {}).items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            _declare_path_parameters(path, operation)
            integration = operation.get("x-amazon-apigateway-integration", {})
            if integration.get("type") == "mock":
                continue
            uri = integration.get("uri")
            if not (isinstance(uri, dict) and "${APIHandler.Arn}" in str(uri.get("Fn::Sub"))):
                raise ArtifactError(f"{method.upper()} {path}: unexpected integration uri "
                                    f"{uri!r} in chalice swagger")
            integration["uri"] = invoke_arn
            if path in PUBLIC_PATHS:
                operation.pop("security", None)
            elif api_key_required and {"api_key": []} not in operation.get("security", []):
                operation.setdefault("security", []).append({"api_key": []})
    if api_key_required:
        body.setdefault("securityDefinitions", {})["api_key"] = API_KEY_SCHEME
        body["x-amazon-apigateway-api-key-source"] = "HEADER"
    return body


if __name__ == "__main__":
    print(source_fingerprint())  # `make package` records it as FINGERPRINT_FILE
