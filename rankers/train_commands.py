"""``sqa train-ranker``: one option per :class:`rankers.train.TrainConfig` field."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from dataclasses import fields

from sqa.commands.options import add_path_argument
from sqa.commands.sources import deprecated_alias
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
    """Argument parser of ``sqa train-ranker`` (one option per :class:`TrainConfig` field)."""
    from rankers.train_config import TrainConfig

    parser = argparse.ArgumentParser(prog="sqa train-ranker", description="Train URGENT-PK.")
    parser.add_argument(
        "--train", dest="data", help="folder root (+ --mos), data.jsonl, Kaldi dir or CSV"
    )
    parser.add_argument(  # the spelling before --train, kept for one release
        "legacy_data", nargs="?", metavar="DATA", help="deprecated: use --train DATA"
    )
    parser.add_argument("--output-dir", required=True, help="run folder (checkpoints, logs)")
    descriptions = _attribute_descriptions(TrainConfig.__doc__ or "")
    for field in fields(TrainConfig):
        if field.name in {"data", "output_dir"}:
            continue
        option = RENAMED.get(field.name, "--" + field.name.replace("_", "-"))
        described = descriptions.get(field.name, "")
        if field.type in ("bool", bool):
            parser.add_argument(
                option,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=field.default,
                help=described,
            )
        else:
            kind = {"int": int, "float": float}.get(str(field.type), str)
            parser.add_argument(
                option,
                dest=field.name,
                type=kind,
                default=field.default,
                choices=TRAIN_CHOICES.get(field.name),
                help=f"{described} (default: %(default)s)",
            )
    parser.add_argument(
        "--mos-csv",
        dest="mos_csv",
        action=deprecated_alias("--mos-csv", "--mos"),
        help=argparse.SUPPRESS,
    )
    add_path_argument(parser)
    return parser


def train_main(argv: Sequence[str] | None) -> int:
    """``sqa train-ranker``: see ``sqa train-ranker --help``."""
    arguments = vars(build_train_parser().parse_args(list(argv or [])))
    from rankers.train import train
    from rankers.train_config import TrainConfig

    arguments.pop("paths")  # applied while parsing (sqa.commands.options), not a config field
    legacy = arguments.pop("legacy_data")
    if legacy is not None:
        warnings.warn("the positional DATA is deprecated; use --train DATA", FutureWarning, 2)
        arguments["data"] = arguments["data"] or legacy
    if not arguments["data"]:
        raise SqaError("no training data: give --train DATA")
    config = TrainConfig(**arguments)
    best = train(config)
    print(f"best checkpoint: {best}")
    return 0
