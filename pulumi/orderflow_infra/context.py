"""Shared wiring every module needs: the validated config and one explicit AWS provider."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orderflow_infra.config import OrderflowConfig


@dataclass(frozen=True)
class Context:
    """Config plus the provider; an explicit provider makes `region` config the only source.

    `parent` is the component (a box of the architecture diagram) whose children are being
    declared: every resource declared through `opts()` becomes its child.
    """

    cfg: OrderflowConfig
    provider: aws.Provider
    parent: pulumi.Resource | None = None

    @classmethod
    def create(cls, cfg: OrderflowConfig) -> Context:
        """Build the provider with default tags so every resource is attributable."""
        provider = aws.Provider(
            "aws",
            region=cfg.region,
            default_tags=aws.ProviderDefaultTagsArgs(
                tags={"Project": cfg.project_name, "Environment": cfg.environment}
            ),
        )
        return cls(cfg=cfg, provider=provider)

    def within(self, component: pulumi.ComponentResource) -> Context:
        """The same context, declaring children of `component` (its `__init__` calls this)."""
        return dataclasses.replace(self, parent=component)

    def name(self, suffix: str) -> str:
        """Physical name `<project>-<env>-<suffix>`."""
        return f"{self.cfg.prefix}-{suffix}"

    def opts(
        self,
        depends_on: Sequence[pulumi.Resource] = (),
        ignore_changes: Sequence[str] = (),
        delete_before_replace: bool = False,
        retain_on_delete: bool = False,
    ) -> pulumi.ResourceOptions:
        """Resource options that pin the explicit provider, under the current component.

        `delete_before_replace` is for resources whose fixed physical name a replacement
        would otherwise reuse while the old one still exists; `retain_on_delete` for what
        the stack may not delete because others may use it too.
        """
        return self.child_opts(pulumi.ResourceOptions(
            provider=self.provider,
            depends_on=list(depends_on),
            ignore_changes=list(ignore_changes) or None,
            delete_before_replace=delete_before_replace or None,
            retain_on_delete=retain_on_delete or None,
        ))

    def child_opts(self, opts: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
        """`opts` with the current component as parent (for resources of other providers)."""
        return opts.merge(pulumi.ResourceOptions(parent=self.parent))

    def invoke_opts(self) -> pulumi.InvokeOptions:
        """Invoke options for data sources, on the same provider and region."""
        return pulumi.InvokeOptions(provider=self.provider)
