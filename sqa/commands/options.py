"""Command-line options shared by the subcommands that read or write listing files."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from sqa.data.records import PATH_RULE_HELP, PATH_RULES, set_path_rule


class _PathRuleAction(argparse.Action):
    """Applies ``--paths`` when it is parsed, so every reader and writer of the run follows it."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        set_path_rule(str(values))
        setattr(namespace, self.dest, values)


def add_path_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--paths {auto,relative-to-listing,relative-to-cwd,absolute}`` to ``parser``.

    Building the parser restores the default rule: subcommands run in one process (tests, the
    demo) must not inherit the rule of an earlier call.
    """
    set_path_rule("auto")
    parser.add_argument(
        "--paths", choices=PATH_RULES, default="auto", action=_PathRuleAction, help=PATH_RULE_HELP
    )
