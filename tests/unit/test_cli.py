"""The command line's shape: each command is registered in one place."""

from __future__ import annotations

import argparse

from processor.__main__ import build_parser


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[
        tuple[str, ...]]:
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append((*prefix, name))
                paths += _command_paths(sub, (*prefix, name))
    return paths


def test_the_dlq_commands_are_registered_once_under_admin():
    paths = _command_paths(build_parser())
    assert [p for p in paths if p[-1] == "dlq"] == [("admin", "dlq")]
    assert {("admin", "dlq", name) for name in ("list", "show", "redrive")} <= set(paths)
