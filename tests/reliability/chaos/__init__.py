"""Fault injection against the whole system, and the figures that go into RELIABILITY.md.

`make chaos` (`python -m tests.reliability.chaos run`) runs every scenario at a large scale and
rewrites RELIABILITY.md; the test suite (`tests/reliability/test_faults.py`) runs the same
scenarios at a small scale. Each scenario starts from a running system, breaks one thing,
repairs it, then audits: every accepted order reached a final state exactly once, nothing was
doubled, and `python -m processor admin check` reports no findings.

- `stack`: the system under test (PostgreSQL, moto behind `proxy`, the API, workers)
- `client`: what a well-behaved API client does (retry 503s with the same Idempotency-Key)
- `audit`: what must hold after every scenario (`Outcome` collects figures and violations)
- `scenarios/`: one module per fault
- `report`: RELIABILITY.md; `__main__`: the command line
"""
