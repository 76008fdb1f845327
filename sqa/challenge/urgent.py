"""URGENT-style challenge table: per-metric ranks, category mean ranks, overall score and order.

The ranking itself is :func:`sqa.stats.rank_systems` (metric ranks with dense or competition
ties, ranks averaged within each category, categories averaged with equal weight; lower overall
is better), as on the official rules pages. This module maps the tables' columns onto the
categories first and leaves out, with a note, every metric that is absent from the tables or has
no value for some system, and every category left without a metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqa.challenge.presets import CategoryMap, resolve
from sqa.errors import DataFormatError


@dataclass(frozen=True)
class ChallengeTable:
    """A scored challenge table, ready to print, write or render.

    Attributes:
        rows: One dict per system, best first (columns documented in :mod:`sqa.commands.challenge`).
        order: System ids, best first.
        metrics: Metric columns used, in category order.
        categories: category -> metric columns used.
        notes: What was left out and why, one line each.
    """

    rows: list[dict[str, Any]]
    order: list[str]
    metrics: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _drop_incomplete(
    means: Mapping[str, Mapping[str, float]], categories: dict[str, list[str]], notes: list[str]
) -> dict[str, list[str]]:
    """Categories without the metrics that lack a finite mean for some system."""
    kept: dict[str, list[str]] = {}
    for category, metrics in categories.items():
        usable = []
        for metric in metrics:
            lacking = [
                system
                for system, row in means.items()
                if not math.isfinite(row.get(metric, math.nan))
            ]
            if lacking:
                notes.append(f"{metric} left out: no value for {', '.join(lacking)}")
            else:
                usable.append(metric)
        if usable:
            kept[category] = usable
        else:
            notes.append(f"category {category} left out: none of its metrics is usable")
    return kept


def urgent_table(
    means: Mapping[str, Mapping[str, float]],
    mapping: CategoryMap,
    *,
    ties: str = "dense",
    files: Mapping[str, int] | None = None,
) -> ChallengeTable:
    """Score systems the URGENT way.

    Args:
        means: system -> metric column -> mean over the system's files.
        mapping: Category map (a preset or a YAML file's).
        ties: ``"dense"`` ("1223", the rules' choice) or ``"competition"`` ("1224").
        files: system -> number of files, copied into the rows when given.

    Returns:
        The table, best system first.

    Raises:
        DataFormatError: No category of the map has a usable metric.
    """
    from sqa.stats import rank_systems

    columns = {name for row in means.values() for name in row}
    resolved = resolve(mapping, columns)
    notes = [f"{label} not in the tables: left out" for label in resolved.missing]
    notes += [f"category {name} left out: none of its metrics is in the tables" for name in
              resolved.empty_categories]  # fmt: skip
    categories = _drop_incomplete(means, resolved.categories, notes)
    if not categories:
        raise DataFormatError(
            f"no metric of category map {mapping.name!r} is usable in the tables "
            f"(columns: {', '.join(sorted(columns)) or 'none'})"
        )
    metrics = [metric for names in categories.values() for metric in names]
    scores = {system: {metric: row[metric] for metric in metrics} for system, row in means.items()}
    ranking = rank_systems(scores, categories, resolved.higher_is_better, ties)
    rows = []
    for system, overall, rank in ranking.ordered():
        row: dict[str, Any] = {"rank": rank, "system_id": system, "overall": overall}
        if files is not None:
            row["files"] = files.get(system, 0)
        for category in categories:
            row[f"category_{category}"] = ranking.category_ranks[category][system]
        for metric in metrics:
            row[metric] = scores[system][metric]
            row[f"rank_{metric}"] = ranking.metric_ranks[metric][system]
        rows.append(row)
    return ChallengeTable(rows, [row["system_id"] for row in rows], metrics, categories, notes)
