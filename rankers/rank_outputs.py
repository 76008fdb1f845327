"""Outputs of ``sqa rank``: ranking table, win-rate matrix, summary JSON, per-file scores.

The per-file table (``--per-file``) has one row per (system, utterance) with ``score``, that file's
mean probability of beating the other systems' versions of the same utterance (both input orders
folded together as in :func:`rankers.ecs.symmetrise`; NaN for skipped utterances), plus the
replication MOS as ``predicted_mos`` when a ranker predicted it. ``sqa agreement --scores
per_file.csv:score`` compares it with human ratings.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankers.ecs import symmetrise
from sqa.fileio import atomic_open, check_writable, dumps_json, write_rows


def side_outputs(output: Path) -> tuple[Path, Path]:
    """Paths of the win-rate matrix CSV and the summary JSON written next to ``output``."""
    return (
        output.with_name(f"{output.stem}_matrix.csv"),
        output.with_name(f"{output.stem}_summary.json"),
    )


def describe_unreadable(unreadable: Sequence[Sequence[str]]) -> str:
    """The first five ``system/utterance: reason`` entries, joined (and how many more)."""
    shown = "; ".join(
        f"{system}/{utterance}: {reason}" for system, utterance, reason in unreadable[:5]
    )
    return shown + (f" (and {len(unreadable) - 5} more)" if len(unreadable) > 5 else "")


def per_file_scores(table: np.ndarray) -> np.ndarray:
    """Mean win probability of each file against the other systems, ``(K, K, M) -> (K, M)``.

    Args:
        table: Probability table ``P[k, w, i]`` (NaN where not compared); either input order.

    Returns:
        ``(K, M)`` means over the finite ``w != k`` entries; NaN where there is none.
    """
    folded = symmetrise(table)
    finite = np.isfinite(folded)
    counts = finite.sum(axis=1)
    totals = np.where(finite, folded, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def per_file_rows(
    homologous: Any, scores: np.ndarray, predicted_mos: np.ndarray | None
) -> list[dict[str, Any]]:
    """One row per (system, utterance) of a :class:`sqa.data.HomologousSet`.

    Args:
        homologous: The matched systems, utterances and paths.
        scores: ``(K, M)`` per-file scores from :func:`per_file_scores`.
        predicted_mos: ``(K, M)`` replication MOS, or ``None`` to leave the column out.

    Returns:
        Rows ``system_id, sample_id, utterance_id, path, score[, predicted_mos]``.
    """
    rows = []
    for row, system in enumerate(homologous.systems):
        for column, stem in enumerate(homologous.utterances):
            path = homologous.paths.get(system, {}).get(stem)
            entry: dict[str, Any] = {
                "system_id": system,
                "sample_id": stem,
                "utterance_id": stem,
                "path": None if path is None else str(path),
                "score": float(scores[row, column]),
            }
            if predicted_mos is not None:
                entry["predicted_mos"] = float(predicted_mos[row, column])
            rows.append(entry)
    return rows


def ranking_rows(
    ranking: Any, bootstrap: Any, replication: np.ndarray, noisy: np.ndarray, human: Mapping
) -> list[dict[str, Any]]:
    """Rows of the ranking table, best system first."""
    order = np.lexsort((np.arange(len(ranking.systems)), -ranking.scores))
    rows = []
    for index in order:
        row = {
            "rank": int(ranking.ranks[index]),
            "system": ranking.systems[index],
            "ecs_score": float(ranking.scores[index]),
            "win_rate": float(ranking.win_rates[index]),
            "predicted_mos": float(replication[index]),
            "rank_ci_low": int(bootstrap.rank_low[index]),
            "rank_ci_high": int(bootstrap.rank_high[index]),
            "bt_strength": float(bootstrap.strengths[index]),
        }
        if np.isfinite(noisy).any():
            row["predicted_mos_noisy"] = float(noisy[index])
        if human:
            row["human_mos"] = float(human.get(ranking.systems[index], math.nan))
        rows.append(row)
    return rows


def write_outputs(
    output: Path,
    rows: list[dict[str, Any]],
    ranking: Any,
    summary: dict,
    force: bool,
    per_file: tuple[Path, list[dict[str, Any]]] | None = None,
) -> None:
    """Write the win-rate matrix, the summary JSON, the per-file table and (last) the ranking."""
    matrix_path, summary_path = side_outputs(output)
    matrix_rows = [
        {
            "system": system,
            **{
                other: float(ranking.win_matrix[row, column])
                for column, other in enumerate(ranking.systems)
            },
        }
        for row, system in enumerate(ranking.systems)
    ]
    write_rows(matrix_path, matrix_rows, force=force)
    check_writable(summary_path, force)
    with atomic_open(summary_path) as stream:
        stream.write(dumps_json(summary, indent=2, default=str) + "\n")
    if per_file is not None:
        write_rows(per_file[0], per_file[1], force=force)
    write_rows(output, rows, force=force)


def report(summary: dict, output: Path) -> None:
    """Print what was skipped (stderr), the correlation with MOS (stdout) and the output path."""
    if summary["unreadable"]:
        for system, utterance, reason in summary["unreadable"]:  # one reason per file
            print(f"sqa rank: skipping {system}/{utterance}: {reason}", file=sys.stderr)
        print(
            f"sqa rank: skipped {len(summary['skipped_utterances'])} utterance(s) with unusable "
            "files (an utterance is compared in every system or in none)",
            file=sys.stderr,
        )
    if summary.get("adaptive"):
        counts = summary["adaptive"]
        print(
            f"sqa rank: adaptive mode used {counts['comparisons']} of {counts['full']} comparisons",
            file=sys.stderr,
        )
    if "correlation_ecs" in summary:
        values = summary["correlation_ecs"]
        print(
            f"system-level vs MOS ({values['systems']} systems): KRCC {values['krcc']:.3f} "
            f"SRCC {values['srcc']:.3f} LCC {values['lcc']:.3f}"
        )
    print(f"wrote {output}")
