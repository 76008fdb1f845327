"""``sqa train-ranker``: one option per :class:`rankers.train.TrainConfig` field."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import fields

from sqa.commands.options import add_path_argument

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
    parser.add_argument("data", help="folder root (+ --mos-csv), data.jsonl, Kaldi dir or CSV")
    parser.add_argument("--output-dir", required=True, help="run folder (checkpoints, logs)")
    descriptions = _attribute_descriptions(TrainConfig.__doc__ or "")
    for field in fields(TrainConfig):
        if field.name in {"data", "output_dir"}:
            continue
        option = "--" + field.name.replace("_", "-")
        described = descriptions.get(field.name, "")
        if field.type in ("bool", bool):
            parser.add_argument(
                option, action=argparse.BooleanOptionalAction, default=field.default, help=described
            )
        else:
            kind = {"int": int, "float": float}.get(str(field.type), str)
            parser.add_argument(
                option,
                type=kind,
                default=field.default,
                choices=TRAIN_CHOICES.get(field.name),
                help=f"{described} (default: %(default)s)",
            )
    add_path_argument(parser)
    return parser


def train_main(argv: Sequence[str] | None) -> int:
    """``sqa train-ranker``: see ``sqa train-ranker --help``."""
    arguments = vars(build_train_parser().parse_args(list(argv or [])))
    from rankers.train import train
    from rankers.train_config import TrainConfig

    arguments.pop("paths")  # applied while parsing (sqa.commands.options), not a config field
    config = TrainConfig(**arguments)
    best = train(config)
    print(f"best checkpoint: {best}")
    return 0
