"""Report builders per source: rank outputs, challenge results, evaluate results, run folders.

Each builder takes plain data (rows, arrays, names) so that :mod:`sqa` never imports the
``rankers`` package; the commands pass what they computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sqa.report.figures import metric_bars, png_bytes, ranking_with_ci, win_rate_heatmap
from sqa.report.html import Report, Section


def _figure(figure: Any, alt: str) -> tuple[bytes, str]:
    return png_bytes(figure), alt


def rank_report(
    rows: Sequence[Mapping[str, Any]],
    systems: Sequence[str],
    win_matrix: np.ndarray,
    skipped: Sequence[str] = (),
    warnings: Sequence[str] = (),
) -> Report:
    """Report of ``sqa rank``: ranking with CIs, win-rate heat map and the ranking table.

    Args:
        rows: Ranking rows, best first (``system``, ``rank``, ``rank_ci_low``, ``rank_ci_high``).
        systems: System names in the order of ``win_matrix``.
        win_matrix: ``(K, K)`` win rate of row system against column system (0..1).
        skipped: Skipped files or utterances, one line each.
        warnings: Warnings of the run, one line each.
    """
    names = [str(row["system"]) for row in rows]
    ranking = ranking_with_ci(
        names,
        [float(row["rank"]) for row in rows],
        [float(row["rank_ci_low"]) for row in rows],
        [float(row["rank_ci_high"]) for row in rows],
    )
    order = [list(systems).index(name) for name in names]
    matrix = np.asarray(win_matrix, dtype=float)[np.ix_(order, order)]
    section = Section(
        "Ranking",
        figures=[
            _figure(ranking, "rank of each system with its bootstrap confidence interval"),
            _figure(win_rate_heatmap(names, matrix), "pairwise win-rate heat map"),
        ],
        tables=[("Ranking table", [dict(row) for row in rows])],
    )
    return Report("sqa rank report", [section], list(skipped), list(warnings))


def normalised_means(
    rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]
) -> dict[str, list[float]]:
    """Per metric, the system means scaled to 0..1 with 1 = best.

    Direction and range come from the metric registry (:func:`sqa.metrics.get_metric_spec`):
    a metric with a closed range is scaled on that range, others on the systems' min..max (the
    worst then sits at 0.05 so that its bar stays visible); unknown columns count as
    higher-is-better.
    """
    values: dict[str, list[float]] = {}
    for metric in metrics:
        column = np.array([_number(row.get(metric)) for row in rows], dtype=float)
        finite = column[np.isfinite(column)]
        if finite.size == 0:
            continue
        higher, (low, high), floor = _direction_and_range(metric, finite)
        scaled = (
            floor + (1 - floor) * (column - low) / (high - low) if high > low else column * 0 + 1
        )
        scaled = np.clip(scaled if higher else 1.0 + floor - scaled, 0.0, 1.0)
        values[metric] = [float(value) if math.isfinite(value) else 0.0 for value in scaled]
    return values


def _direction_and_range(
    metric: str, finite: np.ndarray
) -> tuple[bool, tuple[float, float], float]:
    """(higher is better, (low, high) to scale on, value given to the low end)."""
    from sqa.errors import SqaError
    from sqa.metrics import get_metric_spec

    try:
        spec = get_metric_spec(metric)
    except SqaError:  # a column the registry does not know (e.g. an external tool's)
        return True, (float(finite.min()), float(finite.max())), 0.05
    low, high = spec.value_range
    if low is not None and high is not None:
        return spec.higher_is_better, (float(low), float(high)), 0.0
    return spec.higher_is_better, (float(finite.min()), float(finite.max())), 0.05


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def challenge_report(result: Any) -> Report:
    """Report of ``sqa challenge-score`` from a :class:`sqa.challenge.ChallengeResult`."""
    sections = []
    for group, table in result.tables.items():
        rows = table.rows
        names = [str(row["system_id"]) for row in rows]
        figures = []
        normalised = normalised_means(rows, table.metrics)
        if normalised and names:
            figures.append(_figure(metric_bars(names, normalised), "per-metric bars per system"))
        title = f"{result.style} ranking ({group})"
        sections.append(Section(title, figures=figures, tables=[("Challenge table", rows)]))
    if result.agreement:
        sections.append(Section("Metric-human agreement", tables=[("Agreement", result.agreement)]))
    return Report(
        f"sqa challenge-score report ({result.style})", sections, warnings=list(result.notes)
    )
