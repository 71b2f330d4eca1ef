"""The schema migration: the `migrate` function, invoked once for each new artifact and for
each new database."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from orderflow_infra.context import Context
from orderflow_infra.functions import AppArgs, app_function
from orderflow_infra.packaging import HANDLERS

# Lambda's maximum. The function retries its first connection for all but the last 60 s
# (db/migrate.py): a new RDS Proxy target, or a cluster's first instance, may take minutes
# to accept connections after Pulumi has created them.
MIGRATE_TIMEOUT_SECONDS = 900


class Migration(pulumi.ComponentResource):
    """Applies `db/migrations` before any new code serves.

    Not a box of the diagram but the step between the database and the code: `run` is what
    the API, the sweeper and the order processor wait for, so new code never meets an old
    schema.
    """

    functions: dict[str, aws.lambda_.Function]
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    run: aws.lambda_.Invocation

    def __init__(self, name: str, ctx: Context, args: AppArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orderflow:migration:Migration", name, {}, opts)
        ctx = ctx.within(self)
        function, log_group = app_function(ctx, "migrate", HANDLERS.migrate, args,
                                           MIGRATE_TIMEOUT_SECONDS)
        self.functions, self.log_groups = {"migrate": function}, {"migrate": log_group}
        # Once per artifact and once per database: a replaced or switched database keeps
        # neither its endpoint nor its secret nor its resource id, and starts empty. After the
        # DB, the endpoints and every security group rule on the way exist.
        database = args.database
        self.run = aws.lambda_.Invocation(
            "migrate-run",
            function_name=function.name,
            input=json.dumps({"source": "pulumi", "artifact_sha256": args.artifact.sha256}),
            triggers={"artifact_sha256": args.artifact.sha256, "db_host": database.host,
                      "db_secret_arn": database.secret_arn, "db_identity": database.identity},
            opts=ctx.opts(depends_on=[*database.ready, *args.network.endpoints,
                                      *args.network.rules]),
        )
        self.register_outputs({"function_name": function.name})
