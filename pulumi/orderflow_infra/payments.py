"""The payment provider's settings and, for Stripe, its secret key in Secrets Manager."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from orderflow_infra import iam
from orderflow_infra.context import Context


class Payments(pulumi.ComponentResource):
    """With `payment_provider: stripe`, the stack secret `stripe_secret_key` (set with
    `pulumi config set --secret stripe_secret_key sk_live_...`) becomes a Secrets Manager
    secret; the app gets only its ARN and reads the key at run time. The key stays encrypted
    in the Pulumi state (a secret config value keeps its secret-ness through `secret_string`)
    and never reaches an environment variable or an output.
    """

    secret: aws.secretsmanager.Secret | None

    def __init__(self, name: str, ctx: Context,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orderflow:payments:Payments", name, {}, opts)
        ctx = ctx.within(self)
        self._provider_name = ctx.cfg.payment_provider
        self._api_base = ctx.cfg.stripe_api_base
        self.secret = None
        if self._provider_name == "stripe":
            key = pulumi.Config().get_secret("stripe_secret_key")
            if key is None:
                raise pulumi.RunError(
                    "payment_provider is stripe: set the secret key with"
                    " `pulumi config set --secret stripe_secret_key sk_...`"
                )
            self.secret = aws.secretsmanager.Secret(
                "stripe-secret-key",
                description=f"Stripe secret API key of {ctx.cfg.prefix}",
                opts=ctx.opts(),
            )
            aws.secretsmanager.SecretVersion(
                "stripe-secret-key-version",
                secret_id=self.secret.id,
                secret_string=key,  # already a secret Output (get_secret)
                opts=ctx.opts(),
            )
        outputs: dict[str, pulumi.Input[str]] = {"provider": self._provider_name}
        if self.secret is not None:
            outputs["stripe_secret_key_arn"] = self.secret.arn
        self.register_outputs(outputs)

    def environment(self) -> dict[str, pulumi.Input[str]]:
        env: dict[str, pulumi.Input[str]] = {"PAYMENT_PROVIDER": self._provider_name}
        if self.secret is not None:
            env["STRIPE_API_BASE"] = self._api_base
            env["STRIPE_SECRET_KEY_ARN"] = self.secret.arn
        return env

    def statements(self) -> list[iam.Statement]:
        """Reading the key: every function that may call the provider (the processor
        authorises and captures; the API voids on cancel and refunds)."""
        if self.secret is None:
            return []
        return [iam.allow(["secretsmanager:GetSecretValue"], [self.secret.arn])]
