"""Operator tools behind `python -m processor admin`: order lookup, DLQ, invariant checker."""
