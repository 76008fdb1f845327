"""``sqa demo``: the whole ranking workflow on synthetic systems, end to end and offline.

It writes a folder per "system" (the same speech-like utterances with different amounts of noise,
under names that do not reveal the order), labels every file with offline teacher metrics
(``sqa score``), ranks the systems by ECS over per-file scores (``sqa rank``; with the shipped
default ranker once one is listed in ``checkpoints/manifest.json``) and by URGENT-style rank
aggregation of the teacher metrics, and reports Kendall's tau against the known order.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from sqa.checkpoint import read_manifest
from sqa.errors import SqaError
from sqa.fileio import read_rows, write_rows
from sqa.metrics import get_metric_spec
from sqa.stats import aggregate_ranks, final_ranking
from sqa.synthetic import write_system_folders

# Hidden SNR (dB) per system: a higher SNR is a better system.
DEMO_SYSTEMS = {
    "system_a": 10.0,
    "system_b": 30.0,
    "system_c": 0.0,
    "system_d": 20.0,
    "system_e": 5.0,
}
DEMO_METRICS = ("pesq", "estoi", "si_snr", "dnsmos_ovrl", "distill_mos")
METRIC_CATEGORIES = {
    "intrusive": ["pesq", "estoi", "si_snr"],
    "non_intrusive": ["dnsmos_ovrl", "distill_mos"],
}
DEFAULT_RANKER = "urgent-pk-default"


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``sqa demo``."""
    parser = argparse.ArgumentParser(prog="sqa demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="demo_output", help="folder for everything it writes")
    parser.add_argument("--utterances", type=int, default=6, help="utterances per system")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per utterance")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes for scoring")
    parser.add_argument("--force", action="store_true", help="replace an existing demo folder")
    return parser


def _run(arguments: list[str]) -> None:
    """Run another subcommand through the CLI dispatcher (which owns the lazy imports)."""
    from sqa import cli

    print(f"$ sqa {' '.join(arguments)}", file=sys.stderr)
    code = cli.main(arguments)
    if code != 0:
        raise SystemExit(code)


def _aggregate_ranking(scores_path: Path, output: Path) -> list[tuple[str, float, int]]:
    """URGENT-style ranking of the systems from the per-file teacher scores."""

    per_system: dict[str, dict[str, list[float]]] = {}
    for row in read_rows(scores_path):
        for name, value in row["metrics"].items():
            if name in DEMO_METRICS and value is not None and np.isfinite(value):
                per_system.setdefault(row["system_id"], {}).setdefault(name, []).append(value)
    means = {
        system: {name: float(np.mean(values)) for name, values in metrics.items()}
        for system, metrics in per_system.items()
    }
    directions = {name: get_metric_spec(name).higher_is_better for name in DEMO_METRICS}
    overall = aggregate_ranks(means, METRIC_CATEGORIES, directions)
    ranking = final_ranking(overall, "competition")
    rows = [
        {"rank": rank, "system": system, "average_rank": score, **means[system]}
        for system, score, rank in ranking
    ]
    write_rows(output, rows, force=True)
    return ranking


def _prepare_folder(output: Path, force: bool) -> None:
    """Refuse to clobber a non-empty folder unless ``force`` is given."""
    if output.exists() and any(output.iterdir()) and not force:
        raise SqaError(f"{output} exists and is not empty; pass --force to replace the demo")


def _score(system_folders: list[str], references: Path, scores: Path, jobs: int) -> None:
    """Label every file with the demo's teacher metrics."""
    inputs = ["--systems", *system_folders, "--ref-dir", str(references)]
    options = ["--metrics", ",".join(DEMO_METRICS), "--dnsmos-mode", "fast", "--jobs", str(jobs)]
    _run(["score", *inputs, *options, "--output", str(scores), "--force"])


def _rank(system_folders: list[str], scores: Path, ranking: Path) -> None:
    """ECS ranking with the shipped default ranker, or over per-file DNSMOS until one ships."""
    if DEFAULT_RANKER in read_manifest():
        method = ["--ranker", DEFAULT_RANKER]
    else:
        print(
            f"(no '{DEFAULT_RANKER}' checkpoint shipped yet: ECS over per-file DNSMOS OVRL)",
            file=sys.stderr,
        )
        method = ["--scores", str(scores), "--score-column", "dnsmos_ovrl"]
    _run(["rank", "--systems", *system_folders, *method, "--output", str(ranking), "--force"])


def main(argv: Sequence[str]) -> int:
    """Entry point of ``sqa demo``."""
    options = build_parser().parse_args(list(argv))
    output = Path(options.output)
    _prepare_folder(output, options.force)
    systems_root = output / "systems"
    references = write_system_folders(
        systems_root, DEMO_SYSTEMS, options.utterances, duration=options.duration, seed=2026
    )
    system_folders = [str(systems_root / name) for name in DEMO_SYSTEMS]
    scores, ranking = output / "scores.jsonl", output / "ranking.csv"
    _score(system_folders, references, scores, options.jobs)
    _rank(system_folders, scores, ranking)
    aggregate = _aggregate_ranking(scores, output / "ranking_teachers.csv")
    _report(read_rows(ranking), aggregate, output)
    return 0


def _report(
    ecs_rows: list[dict[str, str]], aggregate: list[tuple[str, float, int]], output: Path
) -> None:
    """Print both rankings beside the true order and their Kendall tau against it."""
    truth = sorted(DEMO_SYSTEMS, key=DEMO_SYSTEMS.get, reverse=True)
    ecs_order = [row["system"] for row in sorted(ecs_rows, key=lambda row: float(row["rank"]))]
    aggregate_order = [system for system, _, _ in aggregate]
    print("\nsystem ranking (best first)")
    print(f"{'true (by SNR)':<16}{'ECS':<16}{'teacher aggregate':<16}")
    for true_name, ecs_name, aggregate_name in zip(truth, ecs_order, aggregate_order, strict=True):
        print(f"{true_name:<16}{ecs_name:<16}{aggregate_name:<16}")
    for label, order in (("ECS", ecs_order), ("teacher aggregate", aggregate_order)):
        tau = kendalltau([truth.index(name) for name in order], range(len(order))).statistic
        print(f"Kendall tau vs the true order, {label}: {tau:.3f}")
    print(
        f"\nwritten under {output}/: systems/, scores.jsonl, ranking.csv (+ win-rate matrix), "
        "ranking_teachers.csv"
    )
