"""Runs the Pulumi program under mocks, for tests/infra and bench/capacity; the program never
imports it (it is not part of `pulumi up`)."""
