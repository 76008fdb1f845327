"""``sqa train-predictor``: train the multi-metric predictor (see :mod:`sqa.predictors.train`).

Works unchanged under ``torchrun --nproc_per_node N -m sqa.cli train-predictor ...`` (DDP).
``--resume --output-dir RUN`` continues RUN from ``RUN/last.pt``; without ``--train`` and
``--config`` the run is rebuilt from ``RUN/config.yaml`` (other flags still override it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sqa.commands.options import (
    RESUME_HELP,
    add_config_arguments,
    add_path_argument,
    deprecated_alias,
)
from sqa.errors import SqaError


def build_parser() -> argparse.ArgumentParser:
    from sqa.predictors.presets import PRESETS

    parser = argparse.ArgumentParser(prog="sqa train-predictor", description="Train the predictor.")
    parser.add_argument("--train", action="append", help="data.jsonl / Kaldi dir / CSV (globs ok)")
    parser.add_argument("--valid", action="append", help="validation data (repeatable)")
    parser.add_argument("--output-dir", help="run folder (checkpoints, log.jsonl, config.yaml)")
    add_config_arguments(parser, "YAML with TrainConfig fields (model: UniVersaConfig)")
    parser.add_argument(
        "--preset", choices=PRESETS, help="model configuration (default compact-mel)"
    )
    parser.add_argument("--ssl-path", default="", help="local SSL model folder (SSL presets)")
    parser.add_argument("--metrics", help="comma-separated heads (default: the 22 Track-2 keys)")
    parser.add_argument("--learning-rate", type=float, help="peak learning rate (default 1e-3)")
    parser.add_argument(
        "--lr",
        type=float,
        dest="learning_rate",
        action=deprecated_alias("--lr", "--learning-rate"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--warmup-steps",
        type=int,
        help="linear lr warm-up (default 25000; a shorter run warms up over 10%% of its steps)",
    )
    parser.add_argument("--max-steps", type=int, help="stop after this many updates")
    parser.add_argument("--epochs", type=int, help="passes over the training data")
    parser.add_argument("--batch-seconds", type=float, help="padded seconds of audio per batch")
    parser.add_argument("--max-batch-size", type=int, help="files per batch at most")
    parser.add_argument("--max-seconds", type=float, help="random crop of longer training files")
    parser.add_argument("--grad-clip", type=float, help="gradient norm clip")
    parser.add_argument("--valid-every", type=int, help="updates between validations")
    parser.add_argument(
        "--criterion", help="'loss' or '<metric|mean>/<utt|sys>_<mse|lcc|srcc|ktau>'"
    )
    parser.add_argument("--metric-weights", help="loss weights, e.g. mos=2,sdr=0.5 (default 1)")
    parser.add_argument("--tensorboard", action="store_true", help="also log to TensorBoard")
    parser.add_argument("--workers", type=int, dest="num_workers", help="data-loader workers")
    parser.add_argument("--threads", type=int, dest="num_threads", help="torch CPU threads")
    parser.add_argument("--seed", type=int, help="the run's one seed")
    parser.add_argument("--device", help="torch device, e.g. cpu, cuda")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="CHECKPOINT",
        help=f"{RESUME_HELP}, rebuilt from its config.yaml when no --train is given; or continue "
        "from CHECKPOINT (its folder is the run folder unless --output-dir is given)",
    )
    parser.add_argument(
        "--force", action="store_true", help="start over in a run folder that has a checkpoint"
    )
    add_path_argument(parser)
    return parser


OVERRIDES = (
    "learning_rate", "warmup_steps", "max_steps", "epochs", "batch_seconds", "max_batch_size",
    "max_seconds", "grad_clip", "valid_every", "criterion", "seed", "device", "output_dir",
    "num_workers", "num_threads",
)  # fmt: skip


def parse_weights(text: str) -> tuple[tuple[str, float], ...]:
    """``"mos=2,sdr=0.5"`` -> ``(("mos", 2.0), ("sdr", 0.5))``."""
    pairs = []
    for item in text.split(","):
        name, separator, value = item.partition("=")
        try:
            pairs.append((name.strip(), float(value)))
        except ValueError:
            raise SqaError(f"--metric-weights expects name=number pairs, got {item!r}") from None
        if not separator or not name.strip():
            raise SqaError(f"--metric-weights expects name=number pairs, got {item!r}")
    return tuple(pairs)


def resolve_config(arguments: argparse.Namespace) -> object:
    """TrainConfig from ``--config`` (if any), then the preset, the flags and ``--set`` items."""
    from sqa.configs import config_from_dict, config_to_dict, load_config, merge, parse_overrides
    from sqa.predictors.presets import preset_config
    from sqa.predictors.train import TrainConfig

    config = load_config(arguments.config, TrainConfig)
    metrics = tuple(m.strip() for m in arguments.metrics.split(",")) if arguments.metrics else None
    if arguments.preset or not arguments.config:
        model = preset_config(
            arguments.preset or "compact-mel", ssl_path=arguments.ssl_path, metrics=metrics
        )
        config = replace(config, model=model)
    elif metrics:
        config = replace(config, model=replace(config.model, metrics=metrics))
    changes = {
        name: getattr(arguments, name) for name in OVERRIDES if getattr(arguments, name) is not None
    }
    if arguments.metric_weights:
        changes["metric_weights"] = parse_weights(arguments.metric_weights)
    if arguments.tensorboard:
        changes["tensorboard"] = True
    if arguments.train:
        changes["train"] = tuple(arguments.train)
    if arguments.valid:
        changes["valid"] = tuple(arguments.valid)
    config = replace(config, **changes)
    if not arguments.set:
        return config
    # --set last: it may reach any field, nested model ones too (model.trunk.num_layers=4).
    return config_from_dict(
        TrainConfig, merge(config_to_dict(config), parse_overrides(arguments.set))
    )


def _resumed_run_config(arguments: argparse.Namespace) -> None:
    """On ``--resume`` without ``--train``/``--config``, read the run folder's ``config.yaml``."""
    if arguments.resume is None or arguments.train or arguments.config:
        return
    if not arguments.output_dir and arguments.resume:
        arguments.output_dir = str(Path(arguments.resume).parent)
    if not arguments.output_dir:
        raise SqaError("--resume without --train needs --output-dir RUN (the run to continue)")
    saved = Path(arguments.output_dir) / "config.yaml"
    if not saved.is_file():
        raise SqaError(f"nothing to resume: {saved} does not exist (give --train to start a run)")
    arguments.config = str(saved)


def main(argv: Sequence[str] | None = None) -> int:
    """Train the multi-metric predictor."""
    arguments = build_parser().parse_args(argv)  # before torch is imported: --help stays fast
    from sqa.predictors.train import train_predictor
    from sqa.runs import check_resume

    _resumed_run_config(arguments)
    config = resolve_config(arguments)
    if not config.train:
        raise SqaError("no training data: give --train (or 'train' in --config)")
    output = Path(config.output_dir)
    first_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 checks
    if first_process:
        check_resume(output, resume=arguments.resume is not None, force=arguments.force)
    resume = arguments.resume
    if resume == "":  # bare --resume: the run folder's own last.pt, when there is one
        resume = str(output / "last.pt") if (output / "last.pt").is_file() else None
    summary = train_predictor(config, resume=resume)
    if summary["rank"] != 0:
        return 0
    print(
        f"sqa train-predictor: {summary['step']} steps, best {config.criterion} = "
        f"{summary['best']}, {summary['skipped']} skipped updates -> {output}",
        file=sys.stderr,
    )
    return 0
