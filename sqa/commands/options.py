"""Command-line options shared by the subcommands that read or write listing files."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from pathlib import Path
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


def add_backend_argument(parser: argparse.ArgumentParser, model_flag: str) -> None:
    """Add ``--backend {torch,onnx}`` (default: ``onnx`` when ``model_flag`` names a .onnx file)."""
    parser.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        help=f"run the model in PyTorch or in onnxruntime (an `sqa export onnx` graph given as "
        f"{model_flag}); default: onnx for a .onnx file, else torch",
    )


def add_path_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--paths {auto,relative-to-listing,relative-to-cwd,absolute}`` to ``parser``.

    Building the parser restores the default rule: subcommands run in one process (tests, the
    demo) must not inherit the rule of an earlier call.
    """
    set_path_rule("auto")
    parser.add_argument(
        "--paths", choices=PATH_RULES, default="auto", action=_PathRuleAction, help=PATH_RULE_HELP
    )


def add_config_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--config FILE`` and repeatable ``--set KEY=VALUE``: the configuration of every trainer.

    The config is built by :func:`sqa.configs.load_config`: the file, then the ``--set`` items
    (dotted keys reach nested configs), then the command's own flags.
    """
    parser.add_argument("--config", metavar="YAML", help=what)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config field (repeatable; dotted keys for nested ones, YAML values)",
    )


RESUME_HELP = "continue the run in --output-dir from its last.pt (a fresh start when there is none)"


def add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    """The one resume rule of every trainer: ``--resume`` continues, ``--force`` starts over, and
    without either a run folder that already holds a checkpoint is refused."""
    parser.add_argument("--resume", action="store_true", help=RESUME_HELP)
    parser.add_argument(
        "--force", action="store_true", help="start over in a run folder that has a checkpoint"
    )


def deprecated_alias(old: str, new: str) -> Any:
    """An argparse action for an old spelling: stores into ``new``'s destination with a warning
    (old spellings stay for one release)."""

    class Alias(argparse.Action):
        def __call__(
            self,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: Any,
            option_string: str | None = None,
        ) -> None:
            warnings.warn(f"{old} is deprecated; use {new}", FutureWarning, stacklevel=2)
            setattr(namespace, self.dest, True if self.nargs == 0 else values)

    return Alias


def checked_table_output(output: str | None, suffixes: Sequence[str], force: bool) -> Path | None:
    """The ``--output`` of a table-writing command, its suffix and overwrite rule checked first.

    Raises:
        SqaError: A suffix outside ``suffixes``, or an existing file without ``--force``.
    """
    if not output:
        return None
    from sqa.errors import SqaError
    from sqa.fileio import check_writable

    path = Path(output)
    if path.suffix.lower() not in suffixes:
        raise SqaError(f"--output {path}: use a {', '.join(suffixes[:-1])} or {suffixes[-1]} file")
    check_writable(path, force)
    return path
