"""What the last `pulumi up` of this stack deployed, for the choices a live stack must keep.

Some settings cannot simply be re-derived on every run: the subnet zones (a new zone with
the same fixed CIDR collides, and AWS's zone lists change over time) and the database's
version and storage (AWS refuses a downgrade or a shrink, after other resources have already
been updated). The program exports them as `deployed_settings` and reads them back from its
own stack's last outputs (a StackReference to itself); a fresh stack has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from orderflow_infra.config import ConfigError, OrderflowConfig

OUTPUT_NAME = "deployed_settings"


@dataclass(frozen=True)
class DeployedSettings:
    """The settings of the last deployment (None: nothing deployed yet, or an older program)."""

    zones: tuple[str, ...] | None = None
    db_engine: str | None = None
    db_engine_version: str | None = None
    db_allocated_storage_gb: int | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> DeployedSettings:
        """From the exported output; missing or malformed entries count as not deployed."""
        raw = raw if isinstance(raw, Mapping) else {}
        zones = raw.get("zones")
        storage = raw.get("db_allocated_storage_gb")
        version = raw.get("db_engine_version")
        engine = raw.get("db_engine")
        return cls(
            zones=tuple(str(z) for z in zones) if isinstance(zones, list) and zones else None,
            db_engine=engine if isinstance(engine, str) else None,
            db_engine_version=version if isinstance(version, str) else None,
            db_allocated_storage_gb=int(storage) if isinstance(storage, int | float) else None,
        )


def export(cfg: OrderflowConfig, zones: pulumi.Input[list[str]]) -> dict[str, Any]:
    """The `deployed_settings` output the next run reads back."""
    return {"zones": zones, "db_engine": cfg.db_engine,
            "db_engine_version": cfg.db_engine_version,
            "db_allocated_storage_gb": cfg.db_allocated_storage_gb}


def read_previous() -> pulumi.Output[DeployedSettings]:
    """This stack's last `deployed_settings` (empty for a stack never deployed)."""
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    own = pulumi.StackReference("deployed-settings", stack_name=name)
    return own.outputs.apply(lambda outputs: DeployedSettings.parse(
        (outputs or {}).get(OUTPUT_NAME)))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def is_major_upgrade(previous: DeployedSettings, cfg: OrderflowConfig) -> bool:
    """A new major version on the same engine: it must apply now, with the new parameter group,
    before the old group (still in use until then) is deleted."""
    return (previous.db_engine == cfg.db_engine and previous.db_engine_version is not None
            and _version(cfg.db_engine_version)[0] > _version(previous.db_engine_version)[0])


def check_transition(previous: DeployedSettings, cfg: OrderflowConfig) -> None:
    """Refuse what AWS refuses on a live database, before anything is changed.

    A version is compared on the parts both name (`16` then `16.4` is not a downgrade: AWS
    resolved the bare major itself). An engine switch creates a new database, so neither rule
    applies to it.
    """
    if previous.db_engine != cfg.db_engine:
        return
    if previous.db_engine_version is not None:
        old, new = _version(previous.db_engine_version), _version(cfg.db_engine_version)
        common = min(len(old), len(new))
        if new[:common] < old[:common]:
            raise ConfigError(
                f"Invalid config db_engine_version: {cfg.db_engine_version} is older than the "
                f"deployed {previous.db_engine_version}; RDS cannot downgrade a database "
                "(restore a snapshot into a new stack instead)")
    if (cfg.db_engine == "rds" and previous.db_allocated_storage_gb is not None
            and cfg.db_allocated_storage_gb < previous.db_allocated_storage_gb):
        raise ConfigError(
            f"Invalid config db_allocated_storage_gb: {cfg.db_allocated_storage_gb} is less "
            f"than the deployed {previous.db_allocated_storage_gb}; RDS storage can only grow")
