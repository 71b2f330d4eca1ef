"""AWS quotas, list prices and modelling assumptions behind CAPACITY.md, in one place.

Prices are us-east-1 on-demand list prices in USD, recorded on PRICES_AS_OF from the pages
named in each entry (this repository's machines cannot fetch them; re-check the pages before
you rely on a figure). Quotas are the documented defaults of a new account; most are soft
limits that AWS raises on request. ASSUMPTIONS are not measured here: they turn the local
benchmark figures into cloud durations, and CAPACITY.md prints them next to the results.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2026-12-01"
PRICED_REGION = "us-east-1"
HOURS_PER_MONTH = 730  # AWS's pricing convention
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600


@dataclass(frozen=True)
class Stated:
    """A number with its unit and where it is stated."""

    value: float
    unit: str
    source: str


LAMBDA_PRICING = "https://aws.amazon.com/lambda/pricing/"
APIGW_PRICING = "https://aws.amazon.com/api-gateway/pricing/"
SQS_PRICING = "https://aws.amazon.com/sqs/pricing/"
SNS_PRICING = "https://aws.amazon.com/sns/pricing/"
SES_PRICING = "https://aws.amazon.com/ses/pricing/"
RDS_PRICING = "https://aws.amazon.com/rds/postgresql/pricing/"
AURORA_PRICING = "https://aws.amazon.com/rds/aurora/pricing/"
PROXY_PRICING = "https://aws.amazon.com/rds/proxy/pricing/"
PRIVATELINK_PRICING = "https://aws.amazon.com/privatelink/pricing/"
CLOUDWATCH_PRICING = "https://aws.amazon.com/cloudwatch/pricing/"
SECRETS_PRICING = "https://aws.amazon.com/secrets-manager/pricing/"
FARGATE_PRICING = "https://aws.amazon.com/fargate/pricing/"
ECR_PRICING = "https://aws.amazon.com/ecr/pricing/"

PRICES: dict[str, Stated] = {
    "lambda_request": Stated(0.20 / 1e6, "per request", LAMBDA_PRICING),
    "lambda_gb_second": Stated(0.0000166667, "per GB-second (x86)", LAMBDA_PRICING),
    "apigw_rest_request": Stated(3.50 / 1e6, "per REST API request (first 333M)",
                                 APIGW_PRICING),
    "sqs_request": Stated(0.40 / 1e6, "per standard-queue request (64 KB chunk)", SQS_PRICING),
    "sns_publish": Stated(0.50 / 1e6, "per publish (64 KB chunk)", SNS_PRICING),
    "sns_email": Stated(2.00 / 1e5, "per email-subscription delivery", SNS_PRICING),
    "ses_email": Stated(0.10 / 1e3, "per outbound email", SES_PRICING),
    "rds_gp3_gb_month": Stated(0.115, "per GB-month of gp3 storage (Single-AZ)", RDS_PRICING),
    "aurora_acu_hour": Stated(0.12, "per ACU-hour (Serverless v2, Aurora Standard)",
                              AURORA_PRICING),
    "aurora_storage_gb_month": Stated(0.10, "per GB-month (Aurora Standard)", AURORA_PRICING),
    "aurora_io_request": Stated(0.20 / 1e6, "per I/O request (Aurora Standard)",
                                AURORA_PRICING),
    "proxy_vcpu_hour": Stated(0.015, "per vCPU-hour of the target instance (minimum 2)",
                              PROXY_PRICING),
    "proxy_acu_hour": Stated(0.015, "per ACU-hour of a Serverless v2 target (minimum 8)",
                             PROXY_PRICING),
    "endpoint_az_hour": Stated(0.01, "per interface endpoint per zone-hour", PRIVATELINK_PRICING),
    "alarm_month": Stated(0.10, "per standard-resolution alarm-month", CLOUDWATCH_PRICING),
    "dashboard_month": Stated(3.00, "per dashboard-month (first 3 per account free)",
                              CLOUDWATCH_PRICING),
    "custom_metric_month": Stated(0.30, "per custom metric-month (first 10,000)",
                                  CLOUDWATCH_PRICING),
    "logs_ingested_gb": Stated(0.50, "per GB ingested (standard class)", CLOUDWATCH_PRICING),
    "secret_month": Stated(0.40, "per secret-month", SECRETS_PRICING),
    "fargate_vcpu_hour": Stated(0.04048, "per vCPU-hour (Linux/x86)", FARGATE_PRICING),
    "fargate_gb_hour": Stated(0.004445, "per GB-hour (Linux/x86)", FARGATE_PRICING),
    "ecr_gb_month": Stated(0.10, "per GB-month of image storage", ECR_PRICING),
}


@dataclass(frozen=True)
class DbClass:
    """An RDS PostgreSQL instance class: size, sustained CPU and Single-AZ hourly price."""

    vcpus: int
    memory_gib: float
    baseline: float  # sustained share of each vCPU (burstable classes), 1.0 otherwise
    hourly: float


DB_CLASSES_SOURCE = (f"{RDS_PRICING}; baselines: https://docs.aws.amazon.com/AWSEC2/latest/"
                     "UserGuide/burstable-performance-instances.html")
DB_CLASSES: dict[str, DbClass] = {
    "db.t4g.micro": DbClass(2, 1, 0.10, 0.016),
    "db.t4g.small": DbClass(2, 2, 0.20, 0.032),
    "db.t4g.medium": DbClass(2, 4, 0.20, 0.065),
    "db.t4g.large": DbClass(2, 8, 0.30, 0.129),
    "db.m7g.large": DbClass(2, 8, 1.0, 0.168),
    "db.m7g.xlarge": DbClass(4, 16, 1.0, 0.337),
    "db.m7g.2xlarge": DbClass(8, 32, 1.0, 0.674),
}

QUOTAS: dict[str, Stated] = {
    "lambda_concurrency": Stated(
        1000, "concurrent executions per region",
        "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"),
    "apigw_rps": Stated(
        10000, "requests/s per account and region (burst 5,000)",
        "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html"),
    "sqs_in_flight": Stated(
        120000, "in-flight messages per standard queue (API rate: nearly unlimited)",
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
        "quotas-messages.html"),
    "sns_publish_rps": Stated(
        30000, "publishes/s per account in us-east-1 (9,000 or 1,500 elsewhere)",
        "https://docs.aws.amazon.com/general/latest/gr/sns.html"),
    "ses_rate": Stated(
        14, "emails/s for a new account out of the sandbox (sandbox: 1/s)",
        "https://docs.aws.amazon.com/ses/latest/dg/quotas.html"),
    "ses_daily": Stated(
        50000, "emails per 24 hours for a new account out of the sandbox (sandbox: 200)",
        "https://docs.aws.amazon.com/ses/latest/dg/quotas.html"),
    "rds_connection_bytes": Stated(
        9531392, "bytes of DBInstanceClassMemory per max_connections "
        "(LEAST(DBInstanceClassMemory/9531392, 5000))",
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html"
        "#RDS_Limits.MaxConnections"),
}

ASSUMPTIONS: dict[str, Stated] = {
    "db_round_trip_s": Stated(0.0005, "s per database round trip inside one region (the "
                              "benchmarks use a local socket)", "assumption"),
    "aws_call_s": Stated(0.020, "s per SQS/SNS/SES API call through a VPC endpoint",
                         "assumption"),
    "payment_s": Stated(0.300, "s per payment provider call, authorise or capture (the "
                        "simulator answers at once; card APIs take a few hundred ms); no "
                        "transaction is open during it", "assumption"),
    "lambda_platform_log_bytes": Stated(350, "bytes of START/END/REPORT log lines per "
                                        "invocation", "assumption"),
    "sweep_seconds": Stated(0.050, "s per idle outbox sweep", "assumption"),
    "esm_idle_pollers": Stated(5, "long-polling SQS pollers of an idle event source mapping",
                               "assumption"),
    "long_poll_s": Stated(20, "s per empty long poll", "assumption"),
    "image_storage_gb": Stated(2.0, "GB of kept worker images (lifecycle keeps 20)",
                               "assumption"),
    "aurora_idle_storage_gb": Stated(1.0, "GB stored by an empty cluster", "assumption"),
}


def price(key: str) -> float:
    return PRICES[key].value


def quota(key: str) -> float:
    return QUOTAS[key].value


def assume(key: str) -> float:
    return ASSUMPTIONS[key].value
