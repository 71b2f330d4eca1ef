"""Pulumi entry point (Pulumi.yaml `main: pulumi/`); the program lives in orderflow_infra."""

from orderflow_infra.stack import main

main()
