"""``sqa train-ranker``: one option per :class:`rankers.train.TrainConfig` field."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from sqa.commands.options import add_config_arguments, add_path_argument, deprecated_alias
from sqa.configs import load_config, merge, parse_overrides
from sqa.errors import SqaError

# Options spelled as the other subcommands spell them (``sqa rank --mos``).
RENAMED = {"mos_csv": "--mos"}

TRAIN_CHOICES = {
    "model": ("paper", "compact", "cached", "distillmos", "ssl"),
    "ties": ("drop", "half"),
    "scoring": ("bs", "nbs"),
}


def _attribute_descriptions(docstring: str) -> dict[str, str]:
    """``name -> text`` from the ``Attributes:`` section of a Google-style docstring."""
    section = docstring.split("Attributes:", 1)[-1]
    found = {}
    for line in section.splitlines():
        name, separator, text = line.strip().partition(": ")
        if separator and name.isidentifier():
            found[name] = text.replace("``", "")
    return found


def build_train_parser() -> argparse.ArgumentParser:
    """Argument parser of ``sqa train-ranker`` (one option per :class:`TrainConfig` field).

    Only the options given end up in the namespace (``argparse.SUPPRESS`` defaults), so that they
    override ``--config`` and ``--set`` rather than resetting them to the defaults.
    """
    from rankers.train_config import TrainConfig

    parser = argparse.ArgumentParser(
        prog="sqa train-ranker",
        description="Train URGENT-PK. Settings: --config YAML, then --set KEY=VALUE, then flags.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--train", dest="data", help="folder root (+ --mos), data.jsonl, Kaldi dir or CSV"
    )
    parser.add_argument(  # the spelling before --train, kept for one release
        "legacy_data", nargs="?", metavar="DATA", help="deprecated: use --train DATA"
    )
    parser.add_argument("--output-dir", dest="output_dir", help="run folder (checkpoints, logs)")
    add_config_arguments(parser, "YAML with TrainConfig fields")
    descriptions = _attribute_descriptions(TrainConfig.__doc__ or "")
    for field in fields(TrainConfig):
        if field.name not in {"data", "output_dir"}:
            _add_field_option(parser, field, descriptions.get(field.name, ""))
    parser.add_argument(
        "--mos-csv",
        dest="mos_csv",
        action=deprecated_alias("--mos-csv", "--mos"),
        help=argparse.SUPPRESS,
    )
    add_path_argument(parser)
    return parser


def _add_field_option(parser: argparse.ArgumentParser, field: Any, described: str) -> None:
    option = RENAMED.get(field.name, "--" + field.name.replace("_", "-"))
    help_text = f"{described} (default: {field.default})"
    if field.type in ("bool", bool):
        parser.add_argument(
            option, dest=field.name, action=argparse.BooleanOptionalAction, help=help_text
        )
        return
    kind = {"int": int, "float": float}.get(str(field.type), str)
    choices = TRAIN_CHOICES.get(field.name)
    parser.add_argument(option, dest=field.name, type=kind, choices=choices, help=help_text)


def _resumed_run_config(given: dict[str, Any]) -> str:
    """``--resume`` without ``--train``: the run folder's ``config.yaml`` is the config."""
    if "output_dir" not in given:
        raise SqaError("--resume without --train needs --output-dir RUN (the run to continue)")
    saved = Path(given["output_dir"]) / "config.yaml"
    if not saved.is_file():
        raise SqaError(f"nothing to resume: {saved} does not exist (give --train to start a run)")
    given.setdefault("force", False)  # the saved run may have been started with --force
    return str(saved)


def train_main(argv: Sequence[str] | None) -> int:
    """Train the URGENT-PK ranker.

    See ``sqa train-ranker --help``.
    """
    given = vars(build_train_parser().parse_args(list(argv or [])))
    from rankers.train import train
    from rankers.train_config import TrainConfig

    given.pop("paths", None)  # applied while parsing (sqa.commands.options), not a config field
    legacy = given.pop("legacy_data", None)
    if legacy is not None:
        warnings.warn("the positional DATA is deprecated; use --train DATA", FutureWarning, 2)
        given.setdefault("data", legacy)
    path, overrides = given.pop("config", None), parse_overrides(given.pop("set", []))
    if path is None and "data" not in given and given.get("resume"):
        path = _resumed_run_config(given)
    config = load_config(path, TrainConfig, merge(overrides, given))
    if not config.data:
        raise SqaError("no training data: give --train DATA")
    best = train(config)
    print(f"best checkpoint: {best}")
    return 0
