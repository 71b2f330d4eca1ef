"""Private VPC across two AZs, reaching AWS services through VPC endpoints instead of a NAT."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from orderflow_infra.context import Context
from orderflow_infra.deployed import DeployedSettings

VPC_CIDR = "10.40.0.0/16"
SUBNET_CIDRS = ("10.40.1.0/24", "10.40.2.0/24")
POSTGRES_PORT = 5432
HTTPS_PORT = 443
# Interface endpoints every consumer needs (SES API is `email`, not `email-smtp`).
BASE_ENDPOINTS = ("sqs", "sns", "email", "secretsmanager")
# Extra interface endpoints a Fargate task needs to pull its image and ship logs.
FARGATE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs")
# Zone ids where RDS Proxy (which has no API listing its zones) and several interface
# endpoint services cannot be created; us-east-1's use1-az3 is the known one.
UNSUPPORTED_ZONE_IDS = ("use1-az3",)
ZONE_COUNT = len(SUBNET_CIDRS)  # an RDS subnet group needs subnets in two zones


class ZoneError(pulumi.RunError):
    """The region has too few zones that every service of the stack supports."""


def _ingress(ctx: Context, name: str, sg: aws.ec2.SecurityGroup, port: int,
             source: aws.ec2.SecurityGroup, description: str
             ) -> aws.vpc.SecurityGroupIngressRule:
    return aws.vpc.SecurityGroupIngressRule(
        name, security_group_id=sg.id, referenced_security_group_id=source.id,
        ip_protocol="tcp", from_port=port, to_port=port, description=description,
        opts=ctx.opts(),
    )


def _egress(ctx: Context, name: str, sg: aws.ec2.SecurityGroup, port: int, description: str,
            *, target: aws.ec2.SecurityGroup | None = None,
            prefix_list_id: pulumi.Input[str] | None = None) -> aws.vpc.SecurityGroupEgressRule:
    return aws.vpc.SecurityGroupEgressRule(
        name, security_group_id=sg.id, ip_protocol="tcp", from_port=port, to_port=port,
        referenced_security_group_id=target.id if target else None,
        prefix_list_id=prefix_list_id, description=description, opts=ctx.opts(),
    )


def _security_group(ctx: Context, name: str, vpc: aws.ec2.Vpc, description: str
                    ) -> aws.ec2.SecurityGroup:
    # No inline rules: the provider then also removes AWS's default allow-all egress.
    # Auto-named: a changed description replaces the group, and the replacement is created
    # while the old one still exists (group names are unique per VPC); the tag names it.
    return aws.ec2.SecurityGroup(
        name, vpc_id=vpc.id, description=description,
        tags={"Name": ctx.name(name)}, opts=ctx.opts(),
    )


def interface_endpoints(ctx: Context) -> tuple[str, ...]:
    """Interface endpoint services (short names) the selected processor mode needs."""
    return BASE_ENDPOINTS + (FARGATE_ENDPOINTS if ctx.cfg.processor == "fargate" else ())


def choose_zones(ctx: Context, services: Sequence[str] = BASE_ENDPOINTS + FARGATE_ENDPOINTS
                 ) -> list[str]:
    """The first zones, in the region's order, where the subnets' every tenant can live.

    A subnet in a zone an interface endpoint does not serve makes the endpoint (and so the
    whole `pulumi up`) fail, and RDS Proxy refuses unsupported zones the same way. So: only
    available zones that need no opt-in (no Local or Wavelength Zones), without the known
    unsupported ids, that every endpoint service of either processor mode lists (a mode
    switch must not move a subnet: a new zone with the same CIDR collides).
    """
    region = ctx.cfg.region
    candidates = aws.get_availability_zones(
        state="available", exclude_zone_ids=list(UNSUPPORTED_ZONE_IDS),
        filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status",
                                                     values=["opt-in-not-required"])],
        opts=ctx.invoke_opts(),
    ).names
    lacking: dict[str, list[str]] = {}
    for service in services:
        offered = set(aws.ec2.get_vpc_endpoint_service(
            service_name=f"com.amazonaws.{region}.{service}", service_type="Interface",
            opts=ctx.invoke_opts(),
        ).availability_zones)
        for zone in candidates:
            if zone not in offered:
                lacking.setdefault(zone, []).append(service)
    zones = [zone for zone in candidates if zone not in lacking]
    if len(zones) < ZONE_COUNT:
        gaps = "; ".join(f"{zone} lacks {', '.join(names)}" for zone, names in lacking.items())
        raise ZoneError(f"{region} has {len(zones)} zone(s) that every service supports, "
                        f"{ZONE_COUNT} are needed ({gaps or 'no other candidate zones'})")
    return zones[:ZONE_COUNT]


class Network(pulumi.ComponentResource):
    """The diagram's AWS boundary: a private VPC in two zones, security groups that gate
    traffic, and the VPC endpoints (no NAT) for the selected processor mode.

    What other boxes attach to: `subnet_ids`, `app_sg` (every function and task), `db_sg`,
    `endpoint_sg`, and `endpoints` and `rules` (whatever calls AWS APIs from the VPC waits for
    them). The zones are the deployed ones once there are any (`previous`): AWS's zone lists
    may change under a live stack, its subnets must not.
    """

    vpc: aws.ec2.Vpc
    zones: pulumi.Output[list[str]]
    subnet_ids: list[pulumi.Output[str]]
    app_sg: aws.ec2.SecurityGroup
    db_sg: aws.ec2.SecurityGroup
    endpoint_sg: aws.ec2.SecurityGroup
    endpoints: list[aws.ec2.VpcEndpoint]
    rules: list[pulumi.Resource]

    def __init__(self, name: str, ctx: Context, previous: pulumi.Output[DeployedSettings],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orderflow:network:Network", name, {}, opts)
        ctx = ctx.within(self)
        cfg = ctx.cfg
        services = interface_endpoints(ctx)
        self.zones = previous.apply(
            lambda deployed: list(deployed.zones) if deployed.zones else choose_zones(ctx))
        self.vpc = aws.ec2.Vpc(
            "vpc", cidr_block=VPC_CIDR, enable_dns_hostnames=True, enable_dns_support=True,
            tags={"Name": ctx.name("vpc")}, opts=ctx.opts(),
        )
        route_table = aws.ec2.RouteTable(
            "private-rt", vpc_id=self.vpc.id, tags={"Name": ctx.name("private")},
            opts=ctx.opts(),
        )
        subnets = []
        for index, cidr in enumerate(SUBNET_CIDRS):
            zone: pulumi.Output[str] = self.zones.apply(operator.itemgetter(index))
            subnet = aws.ec2.Subnet(
                f"private-{index}", vpc_id=self.vpc.id, cidr_block=cidr, availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": zone.apply(lambda z: ctx.name(f"private-{z}"))},
                opts=ctx.opts(),
            )
            aws.ec2.RouteTableAssociation(
                f"private-{index}-rt", subnet_id=subnet.id, route_table_id=route_table.id,
                opts=ctx.opts(),
            )
            subnets.append(subnet)
        self.subnet_ids = [s.id for s in subnets]

        self.app_sg = _security_group(ctx, "app-sg", self.vpc,
                                      "Lambda functions and Fargate tasks")
        self.db_sg = _security_group(ctx, "db-sg", self.vpc,
                                     "PostgreSQL, reachable from the app only")
        endpoint_sg = _security_group(ctx, "endpoint-sg", self.vpc, "VPC interface endpoints")
        self.endpoint_sg = endpoint_sg
        self.rules = [
            _ingress(ctx, "endpoint-https-from-app", endpoint_sg, HTTPS_PORT, self.app_sg,
                     "HTTPS from the app to AWS APIs"),
            _egress(ctx, "app-https-to-endpoints", self.app_sg, HTTPS_PORT,
                    "AWS APIs via endpoints", target=endpoint_sg),
        ]

        self.endpoints = [
            aws.ec2.VpcEndpoint(
                f"vpce-{service.replace('.', '-')}", vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{cfg.region}.{service}",
                vpc_endpoint_type="Interface", private_dns_enabled=True,
                subnet_ids=self.subnet_ids, security_group_ids=[endpoint_sg.id],
                tags={"Name": ctx.name(service)}, opts=ctx.opts(),
            )
            for service in services
        ]
        if cfg.processor == "fargate":
            # ECR serves image layers from S3; a gateway endpoint is free and needs a route
            # table.
            s3 = aws.ec2.VpcEndpoint(
                "vpce-s3", vpc_id=self.vpc.id, service_name=f"com.amazonaws.{cfg.region}.s3",
                vpc_endpoint_type="Gateway", route_table_ids=[route_table.id],
                tags={"Name": ctx.name("s3")}, opts=ctx.opts(),
            )
            self.rules.append(_egress(ctx, "app-https-to-s3", self.app_sg, HTTPS_PORT,
                                      "ECR image layers from S3",
                                      prefix_list_id=s3.prefix_list_id))
            self.endpoints.append(s3)
        self.register_outputs({"vpc_id": self.vpc.id, "subnet_ids": self.subnet_ids,
                               "app_security_group_id": self.app_sg.id,
                               "db_security_group_id": self.db_sg.id})


def allow_tcp(ctx: Context, name: str, client: aws.ec2.SecurityGroup,
              server: aws.ec2.SecurityGroup, port: int, description: str
              ) -> list[pulumi.Resource]:
    """Open one port from exactly one security group to another (both directions' rules);
    returns them, for whatever must wait until the path is open."""
    return [_ingress(ctx, f"{name}-in", server, port, client, description),
            _egress(ctx, f"{name}-out", client, port, description, target=server)]


def allow_postgres(ctx: Context, name: str, client: aws.ec2.SecurityGroup,
                   server: aws.ec2.SecurityGroup) -> list[pulumi.Resource]:
    """Open 5432 from exactly one security group to another (both directions' rules)."""
    return allow_tcp(ctx, name, client, server, POSTGRES_PORT, "PostgreSQL")
