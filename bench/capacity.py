"""`python -m bench.capacity [--check]`: write CAPACITY.md, or fail if it is out of date.

Inputs, and nothing else, so the output is deterministic:
- BENCHMARKS.json, written by `make bench`: per order the DB time, transactions, round trips,
  AWS calls and log bytes (sections `create` and `process`);
- bench/prices.py: AWS quotas, us-east-1 list prices (dated, with sources) and the stated
  assumptions that turn local timings into cloud ones;
- every example stack file `Pulumi.<stack>.yaml`, declared under Pulumi's mocks (the same
  harness as tests/infra) so the idle cost counts the resources the program really creates.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.prices import (
    ASSUMPTIONS,
    DB_CLASSES,
    DB_CLASSES_SOURCE,
    HOURS_PER_MONTH,
    PRICED_REGION,
    PRICES,
    PRICES_AS_OF,
    QUOTAS,
    SECONDS_PER_MONTH,
    DbClass,
    assume,
    price,
    quota,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "pulumi"))  # the Pulumi program's package, as pytest does

from orderflow_infra.config import OrderflowConfig, load_config  # noqa: E402

RATES = (1, 10, 100, 1000)
# boto3 operation (as bench's stub counts it) -> the service that bills and limits it.
SERVICE_OF = {"send_message": "sqs", "send_message_batch": "sqs", "publish": "sns",
              "publish_batch": "sns", "send_email": "ses"}
DEFAULTS = OrderflowConfig(sender_email="orders@example.com")
HEADROOM = 0.7  # size databases and quotas to stay below 70% of a limit


PROVIDER_CALLS_PER_ORDER = 2  # authorise at PROCESSING, capture at fulfilment


class CapacityError(RuntimeError):
    """An input is missing or does not have the shape this generator reads."""


@dataclass(frozen=True)
class PerOrder:
    """What one order costs, from BENCHMARKS.json: time, round trips and AWS calls."""

    create_s: float
    create_db_s: float
    create_round_trips: int
    process_s: float
    process_db_s: float
    process_round_trips: int
    process_transactions: int
    calls: Counter[str]  # service -> calls per order (create + process)
    log_bytes: int
    source: str
    provider_calls: int  # payment provider calls per order (authorise, capture)

    @classmethod
    def load(cls, path: Path) -> PerOrder:
        try:
            document = json.loads(path.read_text())
            create, process = document["sections"]["create"], document["sections"]["process"]
        except (OSError, KeyError, ValueError) as error:
            raise CapacityError(f"{path}: no create/process figures ({error!r}); run "
                                "`make bench` (or `python -m bench --only create process`)"
                                ) from None
        calls: Counter[str] = Counter()
        for operation, count in (*create["aws_calls"].items(), *process["aws_calls"].items()):
            if operation not in SERVICE_OF:
                raise CapacityError(f"{path}: unknown AWS operation {operation!r}; add it to "
                                    "bench/capacity.py SERVICE_OF")
            calls[SERVICE_OF[operation]] += count
        machine = document["machine"]
        return cls(
            create_s=create["handler_seconds"], create_db_s=create["db_seconds"],
            create_round_trips=create["round_trips"], process_s=process["process_seconds"],
            process_db_s=process["db_seconds"], process_round_trips=process["round_trips"],
            process_transactions=process["transactions"], calls=calls,
            log_bytes=create["log_bytes"] + process["log_bytes"],
            provider_calls=PROVIDER_CALLS_PER_ORDER,
            source=f"`{document['command']}` at {machine['Run at']}, code {machine['Code']}, "
                   f"{machine['CPU']}, PostgreSQL {machine['PostgreSQL']}",
        )

    @property
    def api_seconds(self) -> float:
        """One POST /orders in Lambda: local handler time plus cloud round trips."""
        return (self.create_s + self.create_round_trips * assume("db_round_trip_s")
                + self.calls["sqs"] * assume("aws_call_s"))

    @property
    def processor_seconds(self) -> float:
        """One order's processing in Lambda or a worker thread: local time plus cloud calls
        (SNS and SES per status) plus the payment provider (authorise, then capture)."""
        return (self.process_s + self.process_round_trips * assume("db_round_trip_s")
                + (self.calls["sns"] + self.calls["ses"]) * assume("aws_call_s")
                + self.provider_calls * assume("payment_s"))

    @property
    def db_seconds(self) -> float:
        """Database work per order (the raw-SQL floors of create and lifecycle)."""
        return self.create_db_s + self.process_db_s

    @property
    def transaction_seconds(self) -> float:
        """How long an order holds a database connection inside transactions: its work and
        its round trips. No transaction is open during a provider call (the intent commits
        before it, the answer after it), so the provider's latency is not in here; the
        `payment-hold` benchmark measures this with a 300 ms provider."""
        return (self.db_seconds + (self.create_round_trips + self.process_round_trips)
                * assume("db_round_trip_s"))


def max_connections(memory_gib: float) -> int:
    """RDS/Aurora PostgreSQL default max_connections for an instance's memory."""
    return min(int(memory_gib * 2**30 / quota("rds_connection_bytes")), 5000)


def smallest_class(cores: float, connections: int) -> tuple[str, DbClass] | None:
    """The smallest listed class whose sustained CPU and default max_connections fit."""
    for name, spec in DB_CLASSES.items():
        if (spec.vcpus * spec.baseline * HEADROOM >= cores
                and max_connections(spec.memory_gib) * HEADROOM >= connections):
            return name, spec
    return None


@dataclass(frozen=True)
class Load:
    """The model at one order rate (orders created and processed per second)."""

    rate: float
    api_concurrency: float
    processor_concurrency: float
    db_cores: float
    connections: int  # without RDS Proxy: one per warm container, plus the sweeper
    proxy_connections: int  # database side with RDS Proxy: open transactions
    sqs_rps: float
    sns_rps: float
    ses_rps: float

    @classmethod
    def at(cls, rate: float, order: PerOrder, cfg: OrderflowConfig) -> Load:
        api, processor = rate * order.api_seconds, rate * order.processor_seconds
        batches = rate / cfg.sqs_batch_size
        return cls(
            rate=rate, api_concurrency=api, processor_concurrency=processor,
            db_cores=rate * order.db_seconds,
            connections=math.ceil(api) + math.ceil(processor) + 1,
            proxy_connections=math.ceil(rate * order.transaction_seconds) + 1,
            # The event source mapping receives and deletes once per (full) batch.
            sqs_rps=rate * order.calls["sqs"] + 2 * batches,
            sns_rps=rate * order.calls["sns"], ses_rps=rate * order.calls["ses"],
        )


def _n(value: float) -> str:
    """Compact number: 0.42, 3.4, 56, 1,200."""
    if value < 1:
        return f"{value:.2f}"
    if value < 10:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{_n(seconds / 3600)} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def advice(load: Load, order: PerOrder, cfg: OrderflowConfig) -> tuple[str, list[str]]:
    """(What breaks first, the settings to change) at this load, for a default stack."""
    limits: list[tuple[float, str, str]] = []  # (share of the limit, what, what to do)
    needed = math.ceil(load.processor_concurrency / HEADROOM)
    keeps_up = cfg.sqs_max_concurrency / order.processor_seconds
    limits.append((load.processor_concurrency / cfg.sqs_max_concurrency,
                   f"the processor (`sqs_max_concurrency` {cfg.sqs_max_concurrency} keeps up "
                   f"with {_n(keeps_up)} orders/s; the queue grows beyond)",
                   f"`sqs_max_concurrency` {max(needed, cfg.sqs_max_concurrency)} (Fargate: "
                   f"`ecs_max_count` {math.ceil(needed / cfg.worker_concurrency)} at "
                   f"`worker_concurrency` {cfg.worker_concurrency})"))
    limits.append((load.ses_rps / quota("ses_rate"),
                   f"SES sending rate ({_n(load.ses_rps)} of 14 emails/s: emails lag, "
                   "`outbox-lag` fires; orders still complete)",
                   "ask AWS for a higher SES sending rate (no stack setting raises it)"))
    daily = load.ses_rps * 86400
    lasts = quota("ses_daily") / load.ses_rps
    limits.append((daily / quota("ses_daily"),
                   f"SES daily quota (50,000 emails last {_duration(lasts)} at this rate)",
                   "ask AWS for a higher SES daily quota"))
    lambdas = load.api_concurrency + load.processor_concurrency + 1
    limits.append((lambdas / quota("lambda_concurrency"),
                   f"Lambda concurrency ({_n(lambdas)} of 1,000)",
                   "ask AWS for more Lambda concurrency"))
    default = DB_CLASSES[cfg.db_instance_class]
    limits.append((load.db_cores / (default.vcpus * default.baseline),
                   f"database CPU ({_n(load.db_cores)} vCPU busy; {cfg.db_instance_class} "
                   f"sustains {_n(default.vcpus * default.baseline)})", ""))
    limits.append((load.connections / cfg.db_connections_alarm_threshold,
                   f"database connections ({load.connections} without RDS Proxy; the "
                   f"`db-connections` alarm fires at {cfg.db_connections_alarm_threshold})",
                   "`rds_proxy_enabled: true`"))
    limits.append((load.rate / quota("apigw_rps"), "API Gateway's 10,000 requests/s",
                   "ask AWS for a higher API Gateway throttle"))
    limits.append((load.sns_rps / quota("sns_publish_rps"), "SNS publishes",
                   "ask AWS for a higher SNS publish quota"))
    limits.sort(key=lambda limit: limit[0], reverse=True)
    first = limits[0][1] if limits[0][0] >= HEADROOM else "nothing (all below 70% of a limit)"
    changes = [fix for share, _, fix in limits if share >= HEADROOM and fix]
    database = smallest_class(load.db_cores, load.proxy_connections if load.connections
                              > cfg.db_connections_alarm_threshold else load.connections)
    if database is None:
        changes.append("a database beyond the listed classes (db.m7g.2xlarge): "
                       "`db_engine: aurora-serverless` with a high `db_max_capacity_acu`, "
                       "and fewer connections per order")
    elif database[0] != cfg.db_instance_class:
        changes.append(f"`db_instance_class` {database[0]}, or `db_engine: aurora-serverless` "
                       f"with `db_max_capacity_acu` {max(1, int(database[1].memory_gib / 2))} "
                       "(same memory)")
    return first, changes or ["none: the defaults fit"]


def per_million(order: PerOrder, cfg: OrderflowConfig) -> list[tuple[str, str, float]]:
    """(service, how it is counted, USD) per million orders, request-priced services."""
    gb = cfg.lambda_memory_mb / 1024
    compute = (order.api_seconds + order.processor_seconds) * gb
    invocations = 2  # API + processor; one message per invocation at low rates (upper bound)
    sqs = order.calls["sqs"] + 2 / cfg.sqs_batch_size
    log_gb = (order.log_bytes + invocations * assume("lambda_platform_log_bytes")) / 1e9
    million = 1e6
    return [
        ("API Gateway (REST)", "1 request", million * price("apigw_rest_request")),
        ("Lambda requests", f"{invocations} invocations (upper bound)",
         million * invocations * price("lambda_request")),
        ("Lambda compute", f"{_n(compute)} GB-s ({cfg.lambda_memory_mb} MB)",
         million * compute * price("lambda_gb_second")),
        ("SQS", f"{_n(sqs)} requests (send; receive + delete per batch of "
         f"{cfg.sqs_batch_size})", million * sqs * price("sqs_request")),
        ("SNS", f"{order.calls['sns']} publish requests", million * order.calls["sns"]
         * price("sns_publish")),
        ("SES", f"{order.calls['ses']} emails", million * order.calls["ses"]
         * price("ses_email")),
        ("CloudWatch Logs", f"{order.log_bytes:,} bytes of logs and EMF + platform lines",
         million * log_gb * price("logs_ingested_gb")),
    ]


@dataclass(frozen=True)
class StackFile:
    """An example stack file: its validated config and the resources the program declares."""

    name: str
    cfg: OrderflowConfig
    counts: Counter[str]
    interface_endpoints: int
    zones: int


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def declare(path: Path) -> StackFile:
    """Run the Pulumi program under mocks with this stack file's config (Docker assumed)."""
    import pulumi

    from orderflow_mocks.harness import deploy, write_fake_artifact

    raw = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    config = {}
    for key, value in raw.items():
        project, _, name = key.partition(":")
        if project != "orderflow" or (isinstance(value, dict) and "secure" in value):
            continue  # other namespaces, and encrypted values (none of them affects cost)
        config[name] = _config_value(value)
    with tempfile.TemporaryDirectory() as artifact:
        write_fake_artifact(Path(artifact))
        stack = deploy({**config, "artifact_dir": artifact})
        cfg = load_config(pulumi.Config("orderflow"))
    counts = Counter(r.typ for r in stack.resources)
    endpoints = [r for r in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
                 if r.inputs["vpcEndpointType"] == "Interface"]
    zones = len(stack.of_type("aws:ec2/subnet:Subnet"))
    return StackFile(path.name, cfg, counts, len(endpoints), zones)


def idle_month(stack: StackFile) -> list[tuple[str, float]]:
    """(item, USD per month) with no orders at all."""
    cfg, counts = stack.cfg, stack.counts
    items: list[tuple[str, float]] = []
    if cfg.db_engine == "aurora-serverless":
        instances = counts["aws:rds/clusterInstance:ClusterInstance"]
        items.append((f"Aurora Serverless v2: {instances} x {cfg.db_min_capacity_acu:g} ACU "
                      "minimum, storage", instances * cfg.db_min_capacity_acu * HOURS_PER_MONTH
                      * price("aurora_acu_hour") + assume("aurora_idle_storage_gb")
                      * price("aurora_storage_gb_month")))
    else:
        spec = DB_CLASSES.get(cfg.db_instance_class)
        if spec is None:
            raise CapacityError(f"{stack.name}: {cfg.db_instance_class} has no price in "
                                "bench/prices.py DB_CLASSES")
        copies = 2 if cfg.db_multi_az else 1
        items.append((f"RDS {cfg.db_instance_class}{' Multi-AZ' if copies == 2 else ''}, "
                      f"{cfg.db_allocated_storage_gb} GB gp3",
                      copies * (spec.hourly * HOURS_PER_MONTH + cfg.db_allocated_storage_gb
                                * price("rds_gp3_gb_month"))))
    if cfg.rds_proxy_enabled:
        if cfg.db_engine == "aurora-serverless":
            units = max(8.0, cfg.db_min_capacity_acu)
            basis = f"{units:g} ACUs, its minimum for Serverless v2"
            proxy = units * price("proxy_acu_hour") * HOURS_PER_MONTH
        else:
            vcpus = max(2, DB_CLASSES[cfg.db_instance_class].vcpus)
            basis = f"{vcpus} vCPUs of {cfg.db_instance_class}"
            proxy = vcpus * price("proxy_vcpu_hour") * HOURS_PER_MONTH
        items.append((f"RDS Proxy ({basis})", proxy))
    items.append(("Secrets Manager: the database's managed secret", price("secret_month")))
    items.append((f"Interface endpoints: {stack.interface_endpoints} x {stack.zones} zones",
                  stack.interface_endpoints * stack.zones * price("endpoint_az_hour")
                  * HOURS_PER_MONTH))
    if cfg.processor == "fargate":
        task = (cfg.ecs_cpu / 1024 * price("fargate_vcpu_hour") + cfg.ecs_memory_mb / 1024
                * price("fargate_gb_hour"))
        items.append((f"Fargate: {cfg.ecs_min_count} idle worker task(s) "
                      f"({cfg.ecs_cpu} CPU / {cfg.ecs_memory_mb} MB)",
                      cfg.ecs_min_count * task * HOURS_PER_MONTH))
        items.append(("ECR: kept worker images", assume("image_storage_gb")
                      * price("ecr_gb_month")))
        pollers = cfg.ecs_min_count * cfg.worker_concurrency
    else:
        pollers = int(assume("esm_idle_pollers"))
    polls = pollers * SECONDS_PER_MONTH / assume("long_poll_s")
    items.append((f"SQS: {pollers} idle long pollers", polls * price("sqs_request")))
    sweeps = SECONDS_PER_MONTH / 60
    items.append(("Lambda: the outbox sweeper every minute", sweeps * (
        price("lambda_request") + assume("sweep_seconds") * cfg.lambda_memory_mb / 1024
        * price("lambda_gb_second"))))
    items.append(("CloudWatch Logs: the sweeper's platform lines", sweeps * assume(
        "lambda_platform_log_bytes") / 1e9 * price("logs_ingested_gb")))
    alarms = counts["aws:cloudwatch/metricAlarm:MetricAlarm"]
    items.append((f"CloudWatch: {alarms} alarms", alarms * price("alarm_month")))
    items.append(("CloudWatch: the dashboard", price("dashboard_month")))
    items.append(("CloudWatch: OutboxUnsent and OutboxLag (the sweeper emits them always)",
                  2 * price("custom_metric_month")))
    return items


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render(order: PerOrder, stacks: list[StackFile]) -> str:
    cfg = DEFAULTS
    loads = [Load.at(rate, order, cfg) for rate in RATES]
    default_db = DB_CLASSES[cfg.db_instance_class]
    lines = [
        "# Capacity",
        "",
        "Generated by `make capacity` (`python -m bench.capacity`) from BENCHMARKS.json "
        "(written by `make bench`), the quotas, prices and assumptions in `bench/prices.py` "
        "and every `Pulumi.<stack>.yaml`; do not edit by hand. `make test` fails when this "
        "file is out of date.",
        "",
        f"Measured per order ({order.source}):",
        "",
        f"- API request (POST /orders): {order.create_s * 1000:.2f} ms in the handler, "
        f"{order.create_round_trips} database round trip, {order.calls['sqs']} SQS send.",
        f"- Processing: {order.process_s * 1000:.2f} ms of code and database, "
        f"{order.process_transactions} transactions, {order.process_round_trips} round trips, "
        f"{order.calls['sns']} SNS publish requests (PublishBatch) and {order.calls['ses']} SES "
        "emails (one per saved status).",
        f"- Database time (raw-SQL floor of the same writes): {order.db_seconds * 1000:.2f} ms; "
        f"logs and metrics: {order.log_bytes:,} bytes.",
        "",
        "In the cloud (with the assumptions below) an API request takes "
        f"{order.api_seconds * 1000:.0f} ms and processing an order "
        f"{order.processor_seconds * 1000:.0f} ms, most of it the payment provider "
        f"({order.provider_calls} calls: authorise, capture). No transaction is open during a "
        "provider call (the intent commits before it, the answer after it), so each order "
        f"holds a database connection for about {order.transaction_seconds * 1000:.0f} ms.",
        "",
        "## By order rate (default settings)",
        "",
        "Orders created and processed per second; reads (GET) add API requests on top. "
        "Concurrency is rate x duration (Little's law). Connections without RDS Proxy: one "
        "per warm container (API + processor) plus the sweeper; with RDS Proxy the database "
        "side needs one per open transaction.",
        "",
    ]
    lines += _table(
        ["Orders/s", "API Lambda concurrency", "Processor concurrency",
         "DB connections (no proxy / proxy)", "DB vCPU busy",
         "SQS requests/s (quota: nearly unlimited)",
         f"SNS publishes/s (quota {quota('sns_publish_rps'):,.0f})",
         f"SES emails/s (quota {quota('ses_rate'):,.0f})"],
        [[f"{load.rate:,.0f}", _n(load.api_concurrency), _n(load.processor_concurrency),
          f"{load.connections} / {load.proxy_connections}", _n(load.db_cores),
          _n(load.sqs_rps), _n(load.sns_rps), _n(load.ses_rps)] for load in loads])
    lines += ["", "What breaks first, and which settings to change:", ""]
    for load in loads:
        first, changes = advice(load, order, cfg)
        unit = "order/s" if load.rate == 1 else "orders/s"
        lines.append(f"- **{load.rate:,.0f} {unit}.** First limit: {first}. Change: "
                     + "; ".join(changes) + ".")
    lines += [
        "",
        f"Quotas a default stack runs into: Lambda {quota('lambda_concurrency'):,.0f} "
        f"concurrent executions per region; `sqs_max_concurrency` "
        f"{cfg.sqs_max_concurrency}; {cfg.db_instance_class} sustains "
        f"{_n(default_db.vcpus * default_db.baseline)} vCPU and allows about "
        f"{max_connections(default_db.memory_gib)} connections (alarm at "
        f"{cfg.db_connections_alarm_threshold}); SES {quota('ses_rate'):.0f} emails/s, which "
        f"{order.calls['ses']} emails per order turn into "
        f"{quota('ses_rate') / order.calls['ses']:.1f} orders/s. `notification_email` "
        "subscribes one mailbox to every status event (5 emails per order through SNS): "
        "useful for a dev stack, unset it before real traffic.",
        "",
        "## Cost per million orders (request-priced services)",
        "",
        f"us-east-1 list prices of {PRICES_AS_OF}, without free tiers. The database, proxy, "
        "endpoints and alarms cost by the hour whatever the traffic (next section).",
        "",
    ]
    costs = per_million(order, cfg)
    lines += _table(["Service", "Per order", "USD per million orders"],
                    [[name, basis, _usd(usd)] for name, basis, usd in costs])
    lines.append(f"| **Total** | | **{_usd(sum(usd for *_, usd in costs))}** |")
    lines += [
        "",
        "With `notification_email` set, SNS also delivers "
        f"{order.calls['sns']} emails per order to it: "
        f"{_usd(1e6 * order.calls['sns'] * price('sns_email'))} per million orders more.",
        "",
        "## Idle monthly cost of each example stack",
        "",
        f"No orders at all, {HOURS_PER_MONTH} hours, priced in {PRICED_REGION} whatever the "
        "file's region (most regions list slightly higher). Counts come from the program run "
        "under Pulumi's mocks with each file's settings.",
        "",
    ]
    idle = {stack.name: idle_month(stack) for stack in stacks}
    for stack in stacks:
        lines += [f"### {stack.name} (`processor: {stack.cfg.processor}`, "
                  f"`db_engine: {stack.cfg.db_engine}`)", ""]
        lines += _table(["Item", "USD per month"],
                        [[item, _usd(usd)] for item, usd in idle[stack.name]])
        lines.append(f"| **Total** | **{_usd(sum(usd for _, usd in idle[stack.name]))}** |")
        lines.append("")
    lines += [
        "Free at rest: API Gateway, SQS queues, SNS topics, the SES identity, the EventBridge "
        "schedule, the S3 gateway endpoint and backups up to the database's size.",
        "",
        "## Sources",
        "",
        f"Prices ({PRICES_AS_OF}, {PRICED_REGION}, USD):",
        "",
    ]
    lines += [f"- `{key}`: {stated.value:.10g} {stated.unit} ({stated.source})"
              for key, stated in PRICES.items()]
    lines += ["", f"Database classes (vCPUs, GiB, sustained share, USD/hour; {DB_CLASSES_SOURCE}):",
              ""]
    lines += [f"- {name}: {spec.vcpus}, {spec.memory_gib:g}, {spec.baseline:g}, {spec.hourly}"
              for name, spec in DB_CLASSES.items()]
    lines += ["", "Default quotas:", ""]
    lines += [f"- `{key}`: {stated.value:,.0f} {stated.unit} ({stated.source})"
              for key, stated in QUOTAS.items()]
    lines += ["", "Assumptions (not measured here):", ""]
    lines += [f"- `{key}`: {stated.value:g} {stated.unit}" for key, stated in ASSUMPTIONS.items()]
    return "\n".join(lines).rstrip() + "\n"


def stack_files(root: Path = REPO) -> list[Path]:
    return sorted(root.glob("Pulumi.*.yaml"))


def generate(root: Path = REPO) -> str:
    """CAPACITY.md's text from `root`'s BENCHMARKS.json and Pulumi.*.yaml files."""
    order = PerOrder.load(root / "BENCHMARKS.json")
    return render(order, [declare(path) for path in stack_files(root)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=REPO / "CAPACITY.md")
    parser.add_argument("--check", action="store_true",
                        help="fail (exit 1) if the output file is not what would be written")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        if not args.output.is_file() or args.output.read_text() != text:
            print(f"{args.output} is out of date; run `make capacity`", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
