"""The Fargate worker's image: built from pulumi/worker-image/Dockerfile, pushed by `pulumi up`.

`processor: fargate` is then the whole switch. The task definition runs the pushed image by
digest (`<repository>@sha256:...`), so a code change rolls the service, and an unchanged tree
changes nothing: pulumi-docker-build hashes the build context (minus
pulumi/worker-image/Dockerfile.dockerignore) and rebuilds only when that hash or an input changes.
Teams that build in their own pipeline set `processor_image` instead; then nothing is built.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from orderflow_infra.config import ConfigError, OrderflowConfig
from orderflow_infra.context import Context
from orderflow_infra.packaging import REPO_ROOT

DOCKERFILE = REPO_ROOT / "pulumi" / "worker-image" / "Dockerfile"
DOCKER_SOCKET = Path("/var/run/docker.sock")
# The task definition's runtime_platform.cpu_architecture; the image must be built for it.
CPU_ARCHITECTURE = "X86_64"
PLATFORMS: Mapping[str, docker_build.Platform] = {
    "X86_64": docker_build.Platform.LINUX_AMD64,
    "ARM64": docker_build.Platform.LINUX_ARM64,
}
# Only the mutable convenience tag; deployments never run it (they run the digest).
IMAGE_TAG = "latest"

DockerProbe = Callable[[], bool]


def docker_available(env: Mapping[str, str] = os.environ, socket: Path = DOCKER_SOCKET,
                     which: Callable[[str], str | None] = shutil.which) -> bool:
    """Whether this machine can build images: a remote engine, a local socket or the CLI.

    Detection only has to catch the common "no Docker at all" case before anything is
    created; a daemon that is installed but stopped still fails the build itself, clearly.
    """
    return bool(env.get("DOCKER_HOST")) or socket.exists() or which("docker") is not None


def require_image_source(cfg: OrderflowConfig, docker: DockerProbe) -> None:
    """Stop before any resource exists when Fargate mode has neither Docker nor an image."""
    if cfg.processor == "fargate" and cfg.processor_image is None and not docker():
        raise ConfigError(
            "processor is fargate, but this machine has no Docker to build "
            "pulumi/worker-image/Dockerfile (no DOCKER_HOST, no /var/run/docker.sock, no "
            "`docker` on PATH). Either run "
            "`pulumi up` where Docker is available, or build the image in your own pipeline "
            "and set `pulumi config set processor_image <account>.dkr.ecr.<region>."
            "amazonaws.com/<repository>@sha256:<digest>`.")


def context_location() -> str:
    """The repository root relative to the program's working directory.

    Relative, so the stack state does not record one machine's checkout path: an absolute
    path would differ between clones and make the provider rebuild and roll the service.
    """
    return os.path.relpath(REPO_ROOT, Path.cwd())


def ecr_registry(repository: aws.ecr.Repository, auth: pulumi.Output[
        aws.ecr.GetAuthorizationTokenResult]) -> docker_build.RegistryArgs:
    """Push credentials for the stack's repository (a 12-hour token, kept secret in state)."""
    return docker_build.RegistryArgs(
        address=repository.repository_url,
        username=auth.apply(lambda token: token.user_name),
        password=pulumi.Output.secret(auth.apply(lambda token: token.password)),
    )


def build_worker_image(ctx: Context, repository: aws.ecr.Repository) -> pulumi.Output[str]:
    """Build pulumi/worker-image/Dockerfile for the task's architecture and push it to `repository`.

    Returns `<repository url>@<digest>`: the digest output names exactly what was pushed
    (the provider's `ref` keeps the tag too and is documented as not stable).
    """
    auth = aws.ecr.get_authorization_token_output(registry_id=repository.registry_id,
                                                  opts=ctx.invoke_opts())
    context = context_location()
    image = docker_build.Image(
        "worker-image",
        context=docker_build.BuildContextArgs(location=context),
        dockerfile=docker_build.DockerfileArgs(
            location=os.path.join(context, DOCKERFILE.relative_to(REPO_ROOT))),
        platforms=[PLATFORMS[CPU_ARCHITECTURE]],
        push=True,
        tags=[repository.repository_url.apply(lambda url: f"{url}:{IMAGE_TAG}")],
        registries=[ecr_registry(repository, auth)],
        # The provider's delete needs a Docker client; the force-deleted repository removes
        # the pushed images anyway, so switching back to `lambda` (or destroying) works on a
        # machine without Docker too. Superseded images are expired by the lifecycle policy.
        opts=ctx.child_opts(pulumi.ResourceOptions(retain_on_delete=True)),
    )
    return pulumi.Output.concat(repository.repository_url, "@", image.digest)
