"""Pulumi program tests (mocks; no AWS, no CLI)."""
