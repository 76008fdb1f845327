"""``sqa demo``: the whole ranking workflow on synthetic systems, end to end and offline.

It writes a folder per "system" (the same speech-like utterances with different amounts of noise,
under names that do not reveal the order), ranks the systems with the shipped default ranker
(``sqa rank``, ECS with bootstrap rank intervals), labels every file with offline teacher metrics
(``sqa score``) to compare with ECS over DNSMOS and URGENT-style aggregation of the teachers,
reports Kendall's tau of each against the known order, and predicts the metric vector of a few
files with the shipped default predictor (``sqa predict``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
DEFAULT_RANKER = "ranker-default"
DEFAULT_PREDICTOR = "predictor-default"


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


def _rank(root: Path, ranking: Path, scores: Path | None = None) -> None:
    """ECS ranking with the shipped ranker, or ECS over per-file DNSMOS OVRL from ``scores``."""
    method = ["--scores", str(scores), "--score-column", "dnsmos_ovrl"] if scores else []
    _run(["rank", "--root", str(root), *method, "--output", str(ranking), "--force"])


def _predict(folder: Path, count: int, predictions: Path) -> None:
    """Predict the metric vector of ``count`` files with the shipped predictor and print it."""
    from sqa.checkpoint import read_manifest

    if DEFAULT_PREDICTOR not in read_manifest():
        print(f"(no '{DEFAULT_PREDICTOR}' shipped: prediction skipped)", file=sys.stderr)
        return
    chosen = predictions.parent / "predict_input"
    chosen.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.glob("*.wav"))[:count]:
        target = chosen / path.name
        if not target.exists():
            target.symlink_to(path.resolve())
    _run(["predict", "--dir", str(chosen), "--output", str(predictions), "--force"])
    rows = read_rows(predictions)
    names = [key for key in rows[0] if key not in ("sample_id", "system_id", "path", "audio_path")]
    print(f"\npredicted metrics ({predictions.name}, {DEFAULT_PREDICTOR})")
    print(f"{'file':<10}" + "".join(f"{name[:11]:>12}" for name in names))
    for row in rows:
        values = "".join(f"{float(row[name]):>12.3f}" for name in names)
        print(f"{row.get('sample_id', '')!s:<10}{values}")


def main(argv: Sequence[str]) -> int:
    """End-to-end demo on synthetic systems."""
    options = build_parser().parse_args(list(argv))
    output = Path(options.output)
    _prepare_folder(output, options.force)
    systems_root = output / "systems"
    references = write_system_folders(
        systems_root, DEMO_SYSTEMS, options.utterances, duration=options.duration, seed=2026
    )
    # The references live inside the root (as "_reference"); rank only the systems.
    ranking_root = output / "ranked_systems"
    ranking_root.mkdir(parents=True, exist_ok=True)
    for name in DEMO_SYSTEMS:
        link = ranking_root / name
        if not link.exists():
            link.symlink_to((systems_root / name).resolve(), target_is_directory=True)
    system_folders = [str(systems_root / name) for name in DEMO_SYSTEMS]
    scores, ranking = output / "scores.jsonl", output / "ranking.csv"
    _score(system_folders, references, scores, options.jobs)
    _rank(ranking_root, output / "ranking_dnsmos.csv", scores)
    from sqa.checkpoint import read_manifest

    learned = DEFAULT_RANKER in read_manifest()
    if not learned:
        print(f"(no '{DEFAULT_RANKER}' shipped: ranking.csv is ECS over DNSMOS)", file=sys.stderr)
    _rank(ranking_root, ranking, None if learned else scores)
    aggregate = _aggregate_ranking(scores, output / "ranking_teachers.csv")
    _report(read_rows(ranking), read_rows(output / "ranking_dnsmos.csv"), aggregate, output)
    _predict(systems_root / "system_b", 3, output / "predictions.csv")
    return 0


def _order(rows: list[dict[str, str]]) -> list[str]:
    return [row["system"] for row in sorted(rows, key=lambda row: float(row["rank"]))]


def _report(
    learned: list[dict[str, str]],
    dnsmos: list[dict[str, str]],
    aggregate: list[tuple[str, float, int]],
    output: Path,
) -> None:
    """Print the rankings beside the true order and their Kendall tau against it."""
    truth = sorted(DEMO_SYSTEMS, key=DEMO_SYSTEMS.get, reverse=True)
    intervals = {row["system"]: f"[{row['rank_ci_low']}-{row['rank_ci_high']}]" for row in learned}
    orders = {
        f"ECS {DEFAULT_RANKER}": _order(learned),
        "ECS over DNSMOS": _order(dnsmos),
        "teacher aggregate": [system for system, _, _ in aggregate],
    }
    print("\nsystem ranking (best first; learned ranker with its 95% bootstrap rank interval)")
    print(f"{'true (by SNR)':<16}" + "".join(f"{label:<26}" for label in orders))
    for position, true_name in enumerate(truth):
        cells = [order[position] for order in orders.values()]
        cells[0] = f"{cells[0]} {intervals[cells[0]]}"
        print(f"{true_name:<16}" + "".join(f"{cell:<26}" for cell in cells))
    for label, order in orders.items():
        from scipy.stats import kendalltau

        tau = kendalltau([truth.index(name) for name in order], range(len(order))).statistic
        print(f"Kendall tau vs the true order, {label}: {tau:.3f}")
    print(
        f"\nwritten under {output}/: systems/, ranking.csv (+ _matrix.csv, _summary.json), "
        "scores.jsonl, ranking_dnsmos.csv, ranking_teachers.csv, predictions.csv"
    )
