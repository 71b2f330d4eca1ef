"""One typed, validated view of the stack configuration.

Every setting is read and checked here, once, so a typo in `Pulumi.<stack>.yaml` stops the
program before any resource is declared, with a message that names the offending key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import pulumi

ProcessorMode = Literal["lambda", "fargate"]
DbEngine = Literal["rds", "aurora-serverless"]
T = TypeVar("T")

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
     2922, 3288, 3653}
)
# Fargate task sizes: cpu units -> allowed memory (MiB).
FARGATE_MEMORY: Mapping[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
}
# Both parts end up in RDS identifiers (`<project>-<env>-db`), which may not end with a hyphen
# or contain two in a row: single hyphens between letters and digits only.
_NAME = re.compile(r"^(?=.{1,20}$)[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_NAME_RULE = "lowercase letters, digits and single hyphens between them, up to 20 characters"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Variables the stack sets itself; letting `app_env` override them would break wiring.
RESERVED_ENV = frozenset(
    {"ORDER_QUEUE_URL", "ORDER_DLQ_URL", "NOTIFICATION_TOPIC_ARN", "SENDER_EMAIL", "DB_SECRET_ARN",
     "DB_HOST", "DB_PORT", "DB_NAME", "APP_ENV", "LOG_LEVEL", "SERVICE_NAME",
     "METRICS_NAMESPACE", "WORKER_CONCURRENCY", "DB_PREPARED_STATEMENTS", "PAYMENT_PROVIDER",
     "STRIPE_API_BASE", "STRIPE_SECRET_KEY_ARN",
     # A signing secret belongs in Secrets Manager (`stripe_webhook_secret`), never in env.
     "STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET_ARN", "RECONCILE_FIX"}
)
# Keys the Lambda runtime reserves (CreateFunction rejects them). Those without the `AWS_`
# prefix are listed; `_HANDLER` and `_X_AMZN_TRACE_ID` already fail the name pattern. Every
# `AWS_*` name is refused too: ECS injects such variables into tasks as well, and an
# `AWS_ENDPOINT_URL` would point boto3 away from AWS.
LAMBDA_RESERVED_ENV = frozenset({"LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ"})
RESERVED_ENV_PREFIX = "AWS_"


class ConfigError(pulumi.RunError):
    """Invalid stack configuration; RunError makes the CLI print the message without a trace."""


@dataclass(frozen=True)
class OrderflowConfig:
    """All deploy-time settings, with the defaults documented in README.md ("Deploy")."""

    sender_email: str
    region: str = "us-east-1"
    environment: str = "dev"
    project_name: str = "orderflow"
    db_name: str = "orderflow"
    db_engine_version: str = "16"
    db_instance_class: str = "db.t4g.micro"
    db_allocated_storage_gb: int = 20
    db_multi_az: bool = False
    db_backup_retention_days: int = 7
    db_deletion_protection: bool = True
    # Class, Multi-AZ and storage changes: now (true) or in the maintenance window (false, the
    # default, while `pulumi up` reports success at once). A major version upgrade always
    # applies now: its new parameter group replaces the old one in the same update.
    db_apply_immediately: bool = False
    db_connections_alarm_threshold: int = 80
    rds_proxy_enabled: bool = False
    # Aurora PostgreSQL Serverless v2 instead of one RDS instance, sized in ACUs (2 GiB each).
    db_engine: DbEngine = "rds"
    db_min_capacity_acu: float = 0.5
    db_max_capacity_acu: float = 4.0
    processor: ProcessorMode = "lambda"
    processor_image: str | None = None
    ecs_cpu: int = 256
    ecs_memory_mb: int = 512
    ecs_desired_count: int = 1
    ecs_min_count: int = 1
    ecs_max_count: int = 4
    worker_concurrency: int = 4
    notification_email: str | None = None
    alarm_email: str | None = None
    lambda_memory_mb: int = 512
    lambda_timeout_seconds: int = 30
    sqs_batch_size: int = 10
    sqs_max_concurrency: int = 5
    dlq_max_receive_count: int = 5
    log_retention_days: int = 14
    log_level: str = "INFO"
    api_key_required: bool = True
    # The usage plan's limits per API key (API Gateway answers 429 THROTTLED above the rate
    # and burst, 429 QUOTA_EXCEEDED past the daily quota; 0 means no quota).
    api_rate_limit: int = 50
    api_burst_limit: int = 100
    api_quota_per_day: int = 100_000
    # Customer identity (README, Identity): `api_key` (the operator key opens every order) or
    # `jwt` (bearer tokens from the Cognito pool the stack creates, or from `jwt_issuer`).
    auth: str = "api_key"
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_admin_group: str = "orderflow-admins"
    jwt_authorizer_ttl_seconds: int = 300
    tracing_enabled: bool = False
    app_env: Mapping[str, str] = field(default_factory=dict)
    artifact_dir: str = "build/package"
    payment_provider: str = "simulator"
    stripe_api_base: str = "https://api.stripe.com"
    # Stripe's webhook signing secret (`whsec_...`), a Pulumi config secret: stored in Secrets
    # Manager, the API function gets its ARN. Unset: the webhook route answers 503.
    stripe_webhook_secret: pulumi.Output[str] | None = None
    # The reconciler's schedule, and whether its scheduled runs make the safe repairs
    # (`admin reconcile --fix`) or only report.
    reconcile_interval_minutes: int = 5
    reconcile_fix: bool = False

    @property
    def prefix(self) -> str:
        """Physical-name prefix, so two environments can share one account."""
        return f"{self.project_name}-{self.environment}"

    @property
    def service_name(self) -> str:
        """The app's `service` log field and metric dimension (SERVICE_NAME)."""
        return self.project_name

    @property
    def metrics_namespace(self) -> str:
        """CloudWatch namespace of the app's EMF metrics (METRICS_NAMESPACE).

        Per environment: the app's metric dimensions do not name the environment, so two
        stacks in one account and region would otherwise feed each other's alarms.
        """
        return f"{self.project_name}/{self.environment}"

    @property
    def queue_visibility_timeout_seconds(self) -> int:
        """AWS guidance: at least 6x the consumer timeout, or messages are redelivered mid-run."""
        return 6 * self.lambda_timeout_seconds

    @property
    def db_engine_major(self) -> int:
        """Major version, which names the parameter group family."""
        return int(self.db_engine_version.split(".")[0])


class _Reader:
    """Reads raw strings from pulumi.Config and turns them into typed, checked values."""

    def __init__(self, cfg: pulumi.Config) -> None:
        self._cfg = cfg

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"Invalid config {self._cfg.name}:{key}: {problem}")

    def _parse(self, key: str, default: T, parse: Callable[[str], T]) -> T:
        raw = self._cfg.get(key)
        if raw is None or raw == "":
            return default
        try:
            return parse(raw.strip())
        except ValueError as exc:
            raise self.fail(key, f"{exc} (got {raw!r})") from None

    def text(self, key: str, default: str, pattern: re.Pattern[str], what: str) -> str:
        def parse(raw: str) -> str:
            if not pattern.match(raw):
                raise ValueError(f"expected {what}")
            return raw

        return self._parse(key, default, parse)

    def optional_email(self, key: str) -> str | None:
        def parse(raw: str) -> str | None:
            if not _EMAIL.match(raw):
                raise ValueError("expected an email address")
            return raw

        return self._parse(key, None, parse)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        def parse(raw: str) -> int:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"expected an integer between {low} and {high}") from None
            if not low <= value <= high:
                raise ValueError(f"expected an integer between {low} and {high}")
            return value

        return self._parse(key, default, parse)

    def capacity(self, key: str, default: float) -> float:
        """Aurora Serverless v2 capacity: 0.5 to 256 ACUs in steps of 0.5.

        0 (auto-pause) is not offered: the outbox sweeper connects every minute, so the
        cluster would never stay idle long enough to pause.
        """
        def parse(raw: str) -> float:
            try:
                value = float(raw)
            except ValueError:
                raise ValueError("expected 0.5 to 256 ACUs in steps of 0.5") from None
            if not 0.5 <= value <= 256 or value * 2 != int(value * 2):
                raise ValueError("expected 0.5 to 256 ACUs in steps of 0.5")
            return value

        return self._parse(key, default, parse)

    def boolean(self, key: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            if raw.lower() not in ("true", "false"):
                raise ValueError("expected true or false")
            return raw.lower() == "true"

        return self._parse(key, default, parse)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        def parse(raw: str) -> str:
            if raw not in choices:
                raise ValueError(f"expected one of {', '.join(choices)}")
            return raw

        return self._parse(key, default, parse)

    def secret(self, key: str) -> pulumi.Output[str] | None:
        """A value set with `pulumi config set --secret`: kept an encrypted Output, never a
        plain string in the program, the state or a log."""
        return self._cfg.get_secret(key) or None

    def env_map(self, key: str) -> dict[str, str]:
        value = self._cfg.get_object(key) or {}
        if not isinstance(value, dict):
            raise self.fail(key, "expected a map of environment variable names to strings")
        for name, item in value.items():
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise self.fail(key, f"{name!r} is not an UPPER_SNAKE environment variable name")
            if name in RESERVED_ENV:
                raise self.fail(key, f"{name} is set by the stack and cannot be overridden")
            if name in LAMBDA_RESERVED_ENV or name.startswith(RESERVED_ENV_PREFIX):
                raise self.fail(key, f"{name} is reserved by the Lambda and ECS runtimes")
            if not isinstance(item, str | int | float):
                raise self.fail(key, f"{name} must be a string or number")
        return {name: str(item) for name, item in value.items()}


_ISSUER = re.compile(r"^(|https://[^\s/]+(/\S*)?)$")
_GROUP = re.compile(r"^[\w+=,.@-]{1,128}$")


def _identity(r: _Reader, d: type[OrderflowConfig]) -> dict[str, Any]:
    """`auth` and the JWT settings; an external issuer needs its audience too."""
    issuer = r.text("jwt_issuer", "", _ISSUER,
                    "an https issuer URL such as https://example.eu.auth0.com/") or None
    audience = r.text("jwt_audience", "", re.compile(r"^\S{0,256}$"), "an audience") or None
    if (issuer is None) != (audience is None):
        raise r.fail("jwt_audience" if issuer else "jwt_issuer",
                     "set jwt_issuer and jwt_audience together (or neither, for Cognito)")
    return {
        "auth": r.choice("auth", d.auth, ("api_key", "jwt")),
        "jwt_issuer": issuer,
        "jwt_audience": audience,
        "jwt_admin_group": r.text("jwt_admin_group", d.jwt_admin_group, _GROUP,
                                  "a group name (letters, digits, +=,.@-)"),
        "jwt_authorizer_ttl_seconds": r.integer("jwt_authorizer_ttl_seconds",
                                                d.jwt_authorizer_ttl_seconds, 0, 3600),
    }


def load_config(cfg: pulumi.Config | None = None) -> OrderflowConfig:
    """Read and validate the project config; raises ConfigError naming the first bad key."""
    r = _Reader(cfg or pulumi.Config())
    d = OrderflowConfig  # defaults live on the dataclass, in one place

    sender_email = r.optional_email("sender_email")
    if sender_email is None:
        raise r.fail("sender_email", "required (the verified SES sender address)")
    processor = r.choice("processor", d.processor, ("lambda", "fargate"))
    region = r.text("region", d.region, re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$"), "an AWS region")

    engine = r.text("db_engine_version", d.db_engine_version, re.compile(r"^\d+(\.\d+)?$"),
                    "a PostgreSQL version such as 16 or 16.4")
    if int(engine.split(".")[0]) < 16:
        raise r.fail("db_engine_version", f"PostgreSQL 16 or newer is required (got {engine!r})")

    ecs_cpu = r.integer("ecs_cpu", d.ecs_cpu, 256, 4096)
    if ecs_cpu not in FARGATE_MEMORY:
        raise r.fail("ecs_cpu", f"expected one of {sorted(FARGATE_MEMORY)} (got {ecs_cpu})")
    ecs_memory = r.integer("ecs_memory_mb", d.ecs_memory_mb, 512, 30720)
    if ecs_memory not in FARGATE_MEMORY[ecs_cpu]:
        allowed = FARGATE_MEMORY[ecs_cpu]
        raise r.fail("ecs_memory_mb", f"with ecs_cpu={ecs_cpu} expected {allowed.start}-"
                     f"{allowed.stop - 1} in steps of {allowed.step} (got {ecs_memory})")
    ecs_min = r.integer("ecs_min_count", d.ecs_min_count, 0, 100)
    ecs_max = r.integer("ecs_max_count", d.ecs_max_count, 1, 100)
    ecs_desired = r.integer("ecs_desired_count", d.ecs_desired_count, 0, 100)
    if not ecs_min <= ecs_desired <= ecs_max:
        raise r.fail("ecs_desired_count", f"expected ecs_min_count ({ecs_min}) <= "
                     f"ecs_desired_count ({ecs_desired}) <= ecs_max_count ({ecs_max})")

    image = r.text("processor_image", "", re.compile(
        rf"^\d{{12}}\.dkr\.ecr\.{re.escape(region)}\.amazonaws\.com/[a-z0-9._/-]+"
        r"(:[\w.-]+|@sha256:[0-9a-f]{64})$"),
        f"an ECR image URI in {region} with a tag or digest (the VPC has no NAT gateway, "
        "so only ECR is reachable)") or None
    # Without processor_image, Fargate mode builds pulumi/worker-image/Dockerfile (worker_image.py).

    db_engine = r.choice("db_engine", d.db_engine, ("rds", "aurora-serverless"))
    min_acu = r.capacity("db_min_capacity_acu", d.db_min_capacity_acu)
    max_acu = r.capacity("db_max_capacity_acu", d.db_max_capacity_acu)
    if min_acu > max_acu:
        raise r.fail("db_max_capacity_acu", f"expected at least db_min_capacity_acu "
                     f"({min_acu:g}) (got {max_acu:g})")

    log_retention = r.integer("log_retention_days", d.log_retention_days, 1, 3653)
    if log_retention not in LOG_RETENTION_DAYS:
        raise r.fail("log_retention_days",
                     f"expected one of {sorted(LOG_RETENTION_DAYS)} (got {log_retention})")

    return OrderflowConfig(
        sender_email=sender_email,
        region=region,
        environment=r.text("environment", d.environment, _NAME, _NAME_RULE),
        project_name=r.text("project_name", d.project_name, _NAME, _NAME_RULE),
        db_name=r.text("db_name", d.db_name, re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,62}$"),
                       "a PostgreSQL identifier"),
        db_engine_version=engine,
        db_instance_class=r.text("db_instance_class", d.db_instance_class,
                                 re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$"),
                                 "an RDS instance class such as db.t4g.micro"),
        db_allocated_storage_gb=r.integer("db_allocated_storage_gb",
                                          d.db_allocated_storage_gb, 20, 65536),
        db_multi_az=r.boolean("db_multi_az", d.db_multi_az),
        db_backup_retention_days=r.integer("db_backup_retention_days",
                                           d.db_backup_retention_days, 1, 35),
        db_deletion_protection=r.boolean("db_deletion_protection", d.db_deletion_protection),
        db_apply_immediately=r.boolean("db_apply_immediately", d.db_apply_immediately),
        db_connections_alarm_threshold=r.integer("db_connections_alarm_threshold",
                                                 d.db_connections_alarm_threshold, 1, 100000),
        rds_proxy_enabled=r.boolean("rds_proxy_enabled", d.rds_proxy_enabled),
        db_engine="aurora-serverless" if db_engine == "aurora-serverless" else "rds",
        db_min_capacity_acu=min_acu,
        db_max_capacity_acu=max_acu,
        processor="fargate" if processor == "fargate" else "lambda",
        processor_image=image,
        ecs_cpu=ecs_cpu,
        ecs_memory_mb=ecs_memory,
        ecs_desired_count=ecs_desired,
        ecs_min_count=ecs_min,
        ecs_max_count=ecs_max,
        worker_concurrency=r.integer("worker_concurrency", d.worker_concurrency, 1, 256),
        notification_email=r.optional_email("notification_email"),
        alarm_email=r.optional_email("alarm_email"),
        lambda_memory_mb=r.integer("lambda_memory_mb", d.lambda_memory_mb, 128, 10240),
        lambda_timeout_seconds=r.integer("lambda_timeout_seconds",
                                         d.lambda_timeout_seconds, 1, 900),
        sqs_batch_size=r.integer("sqs_batch_size", d.sqs_batch_size, 1, 10),
        sqs_max_concurrency=r.integer("sqs_max_concurrency", d.sqs_max_concurrency, 2, 1000),
        dlq_max_receive_count=r.integer("dlq_max_receive_count",
                                        d.dlq_max_receive_count, 1, 1000),
        log_retention_days=log_retention,
        log_level=r.choice("log_level", d.log_level, ("DEBUG", "INFO", "WARNING", "ERROR")),
        api_key_required=r.boolean("api_key_required", d.api_key_required),
        api_rate_limit=r.integer("api_rate_limit", d.api_rate_limit, 1, 10_000),
        api_burst_limit=r.integer("api_burst_limit", d.api_burst_limit, 1, 5_000),
        api_quota_per_day=r.integer("api_quota_per_day", d.api_quota_per_day, 0, 1_000_000_000),
        **_identity(r, d),
        tracing_enabled=r.boolean("tracing_enabled", d.tracing_enabled),
        app_env=r.env_map("app_env"),
        payment_provider=r.choice("payment_provider", d.payment_provider,
                                  ("simulator", "stripe")),
        stripe_api_base=r.text("stripe_api_base", d.stripe_api_base,
                               re.compile(r"^https://[^\s/]+$"), "an https:// base URL"),
        artifact_dir=r.text("artifact_dir", d.artifact_dir, re.compile(r"^\S+$"), "a path"),
        stripe_webhook_secret=r.secret("stripe_webhook_secret"),
        reconcile_interval_minutes=r.integer("reconcile_interval_minutes",
                                             d.reconcile_interval_minutes, 1, 1440),
        reconcile_fix=r.boolean("reconcile_fix", d.reconcile_fix),
    )
