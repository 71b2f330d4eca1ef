"""The identity box (`auth: jwt`): who may call as a customer, and the authorizer that checks.

By default a Cognito user pool (email sign-in, verified emails) with an app client for the
storefront and an admin group for operators; with `jwt_issuer`/`jwt_audience` an external
OIDC issuer instead (Auth0, Okta, Keycloak...), and no pool. Either way API Gateway's order
routes go through the app's own JWT authorizer function (chalice's `@app.authorizer`, handler
`app.jwt_auth`), not API Gateway's Cognito authorizer, so that the verification the tests run
locally is the one deployed.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from orderflow_infra import iam
from orderflow_infra.context import Context
from orderflow_infra.functions import AppArgs
from orderflow_infra.packaging import HANDLERS

# The authorizer only verifies signatures and claims; it needs no database and no VPC, but it
# must reach the issuer's JWKS over the internet (a VPC without NAT could not).
AUTHORIZER_MEMORY_MB = 256
AUTHORIZER_TIMEOUT_SECONDS = 10


class Identity(pulumi.ComponentResource):
    """Issuer, audience, the user pool (Cognito default) and the authorizer function."""

    issuer: pulumi.Output[str]
    audience: pulumi.Output[str]
    user_pool: aws.cognito.UserPool | None
    client: aws.cognito.UserPoolClient | None
    authorizer: aws.lambda_.Function
    log_group: aws.cloudwatch.LogGroup

    def __init__(self, name: str, ctx: Context, args: AppArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orderflow:identity:Identity", name, {}, opts)
        ctx = ctx.within(self)
        cfg = ctx.cfg
        if cfg.jwt_issuer and cfg.jwt_audience:
            self.user_pool = self.client = None
            self.issuer = pulumi.Output.from_input(cfg.jwt_issuer)
            self.audience = pulumi.Output.from_input(cfg.jwt_audience)
        else:
            self.user_pool, self.client = self._cognito(ctx)
        self.authorizer = self._authorizer(ctx, args)
        outputs: dict[str, pulumi.Input[str]] = {
            "issuer": self.issuer, "audience": self.audience,
            "authorizer_name": self.authorizer.name,
        }
        if self.user_pool is not None and self.client is not None:
            outputs["user_pool_id"] = self.user_pool.id
            outputs["user_pool_client_id"] = self.client.id
        self.register_outputs(outputs)

    def _cognito(
        self, ctx: Context
    ) -> tuple[aws.cognito.UserPool, aws.cognito.UserPoolClient]:
        """The user pool, its storefront client and admin group; sets issuer and audience."""
        cfg = ctx.cfg
        user_pool = aws.cognito.UserPool(
            "user-pool", name=ctx.name("customers"),
            username_attributes=["email"], auto_verified_attributes=["email"],
            account_recovery_setting=aws.cognito.UserPoolAccountRecoverySettingArgs(
                recovery_mechanisms=[
                    aws.cognito.UserPoolAccountRecoverySettingRecoveryMechanismArgs(
                        name="verified_email", priority=1)]),
            opts=ctx.opts(),
        )
        # A public client (no secret: a storefront in a browser cannot keep one). Its id is
        # the ID tokens' `aud` and the access tokens' `client_id`.
        client = aws.cognito.UserPoolClient(
            "user-pool-client", name=ctx.name("storefront"), user_pool_id=user_pool.id,
            generate_secret=False, prevent_user_existence_errors="ENABLED",
            # SRP for storefronts (Amplify); USER_PASSWORD for a test token from the CLI.
            explicit_auth_flows=["ALLOW_USER_SRP_AUTH", "ALLOW_USER_PASSWORD_AUTH",
                                 "ALLOW_REFRESH_TOKEN_AUTH"],
            opts=ctx.opts(),
        )
        aws.cognito.UserGroup(
            "admin-group", name=cfg.jwt_admin_group, user_pool_id=user_pool.id,
            description="orderflow operators: every order, like the API key",
            opts=ctx.opts(),
        )
        self.issuer = pulumi.Output.concat(
            "https://cognito-idp.", cfg.region, ".amazonaws.com/", user_pool.id)
        self.audience = client.id
        return user_pool, client

    def _authorizer(self, ctx: Context, args: AppArgs) -> aws.lambda_.Function:
        cfg = ctx.cfg
        handler = HANDLERS.jwt_auth
        name = ctx.name("jwt-auth")
        log_group = aws.cloudwatch.LogGroup(
            "jwt-auth-logs", name=f"/aws/lambda/{name}",
            retention_in_days=cfg.log_retention_days, opts=ctx.opts(),
        )
        role = iam.service_role(ctx, "jwt-auth-role", "lambda.amazonaws.com",
                                [iam.log_statement(log_group)])
        self.log_group = log_group
        return aws.lambda_.Function(
            "jwt-auth", name=name, role=role.role.arn,
            runtime=args.artifact.runtime(handler), handler=handler,
            code=pulumi.FileArchive(str(args.artifact.zip_path)),
            memory_size=AUTHORIZER_MEMORY_MB, timeout=AUTHORIZER_TIMEOUT_SECONDS,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={
                "AUTH": "jwt",
                "JWT_ISSUER": self.issuer,
                "JWT_AUDIENCE": self.audience,
                "JWT_ADMIN_GROUP": cfg.jwt_admin_group,
                "LOG_LEVEL": cfg.log_level,
                "METRICS_DISABLED": "1",
            }),
            opts=ctx.opts(depends_on=[log_group]),
        )


def identity_outputs(identity: Identity, region: str) -> dict[str, pulumi.Input[str]]:
    """Stack outputs: the issuer and audience, and with Cognito the pool, its client and the
    command that gets a test token (an ID token: it carries the verified email)."""
    outputs: dict[str, pulumi.Input[str]] = {
        "jwt_issuer": identity.issuer,
        "jwt_audience": identity.audience,
    }
    if identity.user_pool is not None and identity.client is not None:
        outputs["user_pool_id"] = identity.user_pool.id
        outputs["user_pool_client_id"] = identity.client.id
        outputs["test_token_command"] = pulumi.Output.concat(
            "aws cognito-idp initiate-auth --region ", region, " --client-id ",
            identity.client.id, " --auth-flow USER_PASSWORD_AUTH --auth-parameters "
            "USERNAME=<email>,PASSWORD=<password> --query AuthenticationResult.IdToken "
            "--output text")
    return outputs
