"""The ``sqa`` console command: one entry point, one subcommand per job.

Subcommand modules are imported lazily so ``sqa --help`` stays fast and so ``sqa`` (the foundation)
never imports ``rankers`` or ``se_finetune`` at module level. Every subcommand is a function
``main(argv) -> int`` that tests call directly.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqa.errors import SqaError


@dataclass(frozen=True)
class Subcommand:
    """Where a subcommand lives and what it does (one line for ``sqa --help``)."""

    module: str
    function: str
    summary: str


SUBCOMMANDS: dict[str, Subcommand] = {
    "score": Subcommand(
        "sqa.commands.score", "main", "label files with teacher metrics (`score merge` for shards)"
    ),
    "pairs": Subcommand("sqa.commands.pairs", "main", "unanimous multi-metric preference pairs"),
    "predict": Subcommand("sqa.commands.predict", "main", "predict metric vectors per file"),
    "evaluate": Subcommand(
        "sqa.commands.evaluate", "main", "Track-2 MSE/LCC/SRCC/KTAU of predictions"
    ),
    "agreement": Subcommand(
        "sqa.commands.agreement", "main", "agreement of score tables with human ratings"
    ),
    "train-predictor": Subcommand(
        "sqa.commands.train_predictor", "main", "train the multi-metric predictor"
    ),
    "track2": Subcommand("sqa.commands.track2", "main", "URGENT 2026 Track-2 submissions"),
    "rank": Subcommand(
        "rankers.commands", "rank_main", "rank systems with URGENT-PK/ECS (or ECS over scores)"
    ),
    "train-ranker": Subcommand(
        "rankers.train_commands", "train_main", "train the URGENT-PK ranker"
    ),
    "enhance": Subcommand("se_finetune.commands", "enhance_main", "run a restorer on a folder"),
    "simulate": Subcommand("se_finetune.commands", "simulate_main", "build degraded folders"),
    "simulate-systems": Subcommand(
        "se_finetune.systems_command", "simulate_systems_main", "homologous system folders"
    ),
    "make-noise": Subcommand(
        "se_finetune.systems_command", "make_noise_main", "procedural noise and simulated RIRs"
    ),
    "synthesize": Subcommand(
        "se_finetune.tts_command", "main", "multi-voice speech corpus from Debian TTS engines"
    ),
    "finetune": Subcommand("se_finetune.commands", "finetune_main", "SQA-guided SE fine-tuning"),
    "checkpoint": Subcommand(
        "sqa.commands.checkpoint", "main", "inspect, verify, export checkpoints"
    ),
    "demo": Subcommand("sqa.commands.demo", "main", "end-to-end demo on synthetic systems"),
}


def _resolve(name: str) -> Callable[[Sequence[str]], int] | None:
    """Import a subcommand's entry point, or ``None`` if its module is not part of this build."""
    spec = SUBCOMMANDS[name]
    try:
        found = importlib.util.find_spec(spec.module)
    except ModuleNotFoundError:
        found = None
    if found is None:
        return None
    return getattr(importlib.import_module(spec.module), spec.function)


def run_command(name: str, function: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
    """Run a subcommand, turning user errors into one line on stderr and exit code 2."""
    from sqa.data.records import set_path_rule

    try:
        return int(function(list(argv)) or 0)
    except SqaError as error:
        print(f"sqa {name}: error: {error}", file=sys.stderr)
        return int(getattr(error, "exit_code", 2))
    except (FileNotFoundError, IsADirectoryError, PermissionError) as error:
        print(f"sqa {name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sqa {name}: interrupted", file=sys.stderr)
        return 130
    finally:
        set_path_rule("auto")  # --paths holds for one command, not for the rest of the process


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; subcommands parse their own arguments."""
    lines = [f"  {name:<16} {spec.summary}" for name, spec in SUBCOMMANDS.items()]
    parser = argparse.ArgumentParser(
        prog="sqa",
        description="Speech-quality assessment and ranking suite.",
        epilog="subcommands:\n"
        + "\n".join(lines)
        + "\n\nRun `sqa <subcommand> --help` for details.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("subcommand", nargs="?", help="one of the subcommands below")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sqa`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] in {"-h", "--help"}:
        build_parser().print_help()
        return 0 if arguments else 2
    if arguments[0] == "--version":
        from sqa import __version__

        print(f"sqa-suite {__version__}")
        return 0
    name, rest = arguments[0], arguments[1:]
    if argv is None:  # the console script (tests call main() with arguments and keep Python's)
        # Warnings are messages to the user: one line, not the source line of the warning call.
        warnings.formatwarning = lambda message, *_, **__: f"sqa {name}: warning: {message}\n"
    if name not in SUBCOMMANDS:
        print(f"sqa: error: unknown subcommand {name!r}; run `sqa --help`", file=sys.stderr)
        return 2
    function = _resolve(name)
    if function is None:
        print(f"sqa {name}: not available yet in this version", file=sys.stderr)
        return 2
    return run_command(name, function, rest)


if __name__ == "__main__":
    sys.exit(main())
