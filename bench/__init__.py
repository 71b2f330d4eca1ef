"""Benchmarks for orderflow: `python -m bench` (or `make bench`) rewrites BENCHMARKS.md.

Each benchmark module has `run(env, sizes) -> Section`; `bench.runner` runs them in order.
Benchmarks are not tests: tests/bench/test_bench_smoke.py runs a tiny version of each to prove
the harness works.
"""
