"""Pulumi-native checks: `@pulumi.runtime.test` tests that return Output chains.

A test returning an Output *without* the decorator passes whatever it asserts, so the last
test proves that a wrong assertion inside a decorated Output chain really fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from orderflow_infra import stack
from orderflow_mocks.harness import use_mocks


@pytest.fixture
def fresh_runtime(base_config: dict[str, str]) -> None:
    use_mocks(base_config)


def _check(predicate: Callable[[Any], bool]) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        assert predicate(value), value

    return check


@pulumi.runtime.test
def test_api_url_output_points_at_the_stage_orders_path(fresh_runtime: None) -> pulumi.Output:
    outputs = stack.build()
    return outputs["api_url"].apply(_check(
        lambda url: url == "https://api-id.execute-api.eu-west-1.amazonaws.com/test/orders"))


@pulumi.runtime.test
def test_api_key_output_is_the_key_id(fresh_runtime: None) -> pulumi.Output:
    outputs = stack.build()
    return outputs["api_key_id"].apply(_check(lambda key_id: key_id == "api-key-id"))


@pulumi.runtime.test
def test_log_group_names_output_lists_every_function(fresh_runtime: None) -> pulumi.Output:
    outputs = stack.build()
    return pulumi.Output.from_input(outputs["log_group_names"]).apply(_check(
        lambda names: names == {key: f"/aws/lambda/orderflow-test-{key}" for key in
                                ("api", "sweep-outbox", "migrate", "process-orders",
                                 "reconcile")}))


def test_a_wrong_assertion_in_an_output_chain_fails_the_test(fresh_runtime: None) -> None:
    @pulumi.runtime.test
    def deliberately_wrong() -> pulumi.Output:
        outputs = stack.build()
        return outputs["queue_url"].apply(_check(lambda url: url == "https://wrong"))

    with pytest.raises(AssertionError, match="orderflow-test-orders"):
        deliberately_wrong()
