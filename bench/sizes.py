"""How much work each benchmark does: the full run, a scaled run, and the smoke-test run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    create_calls: int = 600
    create_moto_calls: int = 150
    process_orders: int = 250
    process_moto_orders: int = 40
    http_requests: tuple[tuple[int, int], ...] = ((1, 600), (8, 2000), (32, 2000))
    http_moto_requests: int = 300
    e2e_orders: int = 1000
    local_e2e_orders: int = 1000
    cold_runs: int = 15
    make_package: bool = True  # rebuild build/package/deployment.zip first (needs the index)
    powertools: bool = True  # install aws-lambda-powertools to time its imports (needs the index)
    listing_rows: int = 1_000_000
    listing_depth: int = 10_000
    listing_repeats: int = 25
    containers: int = 50
    calls_per_container: int = 4
    reconcile_orders: int = 100_000
    reconcile_recent: int = 250  # of them changed in the last hour, with real PaymentIntents

    def scaled(self, factor: float) -> Sizes:
        """Fewer requests and rows (at least a handful of each); factor 1 is the full run."""
        if factor >= 1:
            return self

        def shrink(value: int, floor: int) -> int:
            return max(floor, int(value * factor))

        return dataclasses.replace(
            self,
            create_calls=shrink(self.create_calls, 10),
            create_moto_calls=shrink(self.create_moto_calls, 10),
            process_orders=shrink(self.process_orders, 5),
            process_moto_orders=shrink(self.process_moto_orders, 3),
            http_requests=tuple((c, shrink(n, 2 * c)) for c, n in self.http_requests),
            http_moto_requests=shrink(self.http_moto_requests, 16),
            e2e_orders=shrink(self.e2e_orders, 20),
            local_e2e_orders=shrink(self.local_e2e_orders, 20),
            cold_runs=shrink(self.cold_runs, 3),
            listing_rows=shrink(self.listing_rows, 2_000),
            listing_depth=min(self.listing_depth, shrink(self.listing_rows, 2_000) // 2),
            listing_repeats=shrink(self.listing_repeats, 5),
            containers=shrink(self.containers, 10),
            reconcile_orders=shrink(self.reconcile_orders, 1_000),
            reconcile_recent=shrink(self.reconcile_recent, 10),
        )


FULL = Sizes()

# The smoke test: every code path once or a few times, in seconds.
SMOKE = dataclasses.replace(
    FULL,
    create_calls=8,
    create_moto_calls=5,
    process_orders=5,
    process_moto_orders=2,
    http_requests=((1, 10), (4, 20)),
    http_moto_requests=8,
    e2e_orders=10,
    local_e2e_orders=10,
    cold_runs=1,
    make_package=False,
    powertools=False,
    listing_rows=20_000,
    listing_depth=2_000,
    listing_repeats=3,
    containers=8,
    calls_per_container=2,
    reconcile_orders=300,
    reconcile_recent=3,
)
