"""One pure function from per-file score tables to every challenge table (for CLI and reports)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqa.challenge.ccf import CCF_WEIGHTS, ccf_table
from sqa.challenge.presets import category_map
from sqa.challenge.tables import (
    ALL_TYPES,
    PARAMETER_COLUMN,
    FileRow,
    means_by_type,
    metric_columns,
    read_tables,
    type_column,
)
from sqa.challenge.urgent import ChallengeTable, urgent_table
from sqa.errors import DataFormatError

STYLES = ("urgent", "ccf")
DEFAULT_TIES = {"urgent": "dense", "ccf": "competition"}


@dataclass(frozen=True)
class ChallengeResult:
    """Everything ``sqa challenge-score`` computes.

    Attributes:
        style: ``"urgent"`` or ``"ccf"``.
        tables: ``"all"`` -> the table over every file, plus one table per distortion type.
        agreement: Metric-human agreement rows (empty without human ratings).
        notes: Left-out metrics and other remarks, one line each.
    """

    style: str
    tables: dict[str, ChallengeTable]
    agreement: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def order(self) -> list[str]:
        """Final order of the systems over all files, best first."""
        return self.tables[ALL_TYPES].order

    def output_rows(self) -> list[dict[str, Any]]:
        """Flat rows for CSV/JSONL: ``table`` = ``ranking``, ``ranking:<type>`` or ``agreement``."""
        rows = []
        for group, table in self.tables.items():
            name = "ranking" if group == ALL_TYPES else f"ranking:{group}"
            rows.extend({"table": name, **row} for row in table.rows)
        rows.extend({"table": "agreement", **row} for row in self.agreement)
        return rows


def table_parameters(rows: Iterable[FileRow]) -> dict[str, float]:
    """system -> the ``parameters`` column's value (one value per system, else an error)."""
    found: dict[str, float] = {}
    for row in rows:
        value = row.metrics.get(PARAMETER_COLUMN, math.nan)
        if not math.isfinite(value):
            continue
        if row.system_id in found and found[row.system_id] != value:
            raise DataFormatError(
                f"system {row.system_id!r} has two parameter counts: {found[row.system_id]} "
                f"and {value}"
            )
        found[row.system_id] = value
    return found


def _score_group(means: Any, style: str, options: Mapping[str, Any]) -> ChallengeTable:
    if style == "ccf":
        return ccf_table(
            means.means,
            weights=options["weights"],
            parameters=options["parameters"],
            ties=options["ties"],
            files=means.files,
        )
    return urgent_table(means.means, options["mapping"], ties=options["ties"], files=means.files)


def score_challenge(
    tables: Iterable[str | os.PathLike[str]] | list[FileRow],
    *,
    style: str = "urgent",
    categories: str = "urgent2026",
    ties: str | None = None,
    weights: Mapping[str, float] | None = None,
    parameters: Mapping[str, float] | None = None,
    type_name: str | None = None,
    human: Mapping[str, float] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> ChallengeResult:
    """Score systems from per-file tables.

    Args:
        tables: Score table paths (merged on ``(system_id, sample_id)``) or already read rows.
        style: ``"urgent"`` (category mean ranks) or ``"ccf"`` (CCF-AATC 2025 points).
        categories: URGENT preset name or YAML category map (``style="urgent"``).
        ties: ``"dense"`` or ``"competition"`` (default: dense for URGENT, competition for CCF).
        weights: CCF metric column -> weight (default WAcc 2, DNSMOS OVRL 1, PESQ 1).
        parameters: system -> parameter count; overrides the tables' ``parameters`` column.
        type_name: Distortion-type text column (default: the first of distortion_type,
            distortion, type that exists); a table per type is added when there is one.
        human: system -> human mean; adds the metric-human agreement rows.
        resamples: Bootstrap resamples of the agreement intervals.
        seed: Bootstrap seed.

    Returns:
        The :class:`ChallengeResult`.
    """
    if style not in STYLES:
        raise DataFormatError(f"unknown style {style!r}; use one of {', '.join(STYLES)}")
    rows = list(tables)
    if rows and not isinstance(rows[0], FileRow):
        rows = read_tables(rows)
    if not rows:
        raise DataFormatError("the score tables hold no rows")
    metrics = [name for name in metric_columns(rows) if name != PARAMETER_COLUMN]
    options: dict[str, Any] = {
        "ties": ties or DEFAULT_TIES[style],
        "weights": dict(weights or CCF_WEIGHTS),
        "parameters": {**table_parameters(rows), **(parameters or {})},
        "mapping": category_map(categories) if style == "urgent" else None,
        "resamples": resamples,
        "seed": seed,
    }
    groups = means_by_type(rows, metrics, type_column(rows, type_name))
    scored = {name: _score_group(means, style, options) for name, means in groups.items()}
    notes = list(scored[ALL_TYPES].notes)
    notes += _failure_notes(groups[ALL_TYPES].failed, scored[ALL_TYPES].metrics)
    agreement = []
    if human is not None:
        agreement = _agreement(groups[ALL_TYPES].means, human, metrics, options)
        unrated = [system for system in groups[ALL_TYPES].means if system not in human]
        if unrated:
            notes.append(f"no human rating for {', '.join(unrated)}: left out of the agreement")
    return ChallengeResult(style, scored, agreement, notes)


def _failure_notes(failed: Mapping[str, Mapping[str, int]], used: list[str]) -> list[str]:
    notes = []
    for system, counts in failed.items():
        parts = [f"{metric} {count}" for metric, count in counts.items() if metric in used]
        if parts:
            notes.append(
                f"{system}: files without a value, left out of its means: {', '.join(parts)}"
            )
    return notes


def _agreement(
    means: Mapping[str, Mapping[str, float]],
    human: Mapping[str, float],
    metrics: list[str],
    options: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Agreement of every metric column (not only the ranked ones) with the listeners."""
    from sqa.challenge.human import metric_human_agreement
    from sqa.challenge.presets import CategoryMap

    mapping = options["mapping"] or CategoryMap("ccf", {})
    directions = {}
    for metric in metrics:
        try:
            directions[metric] = mapping.higher_is_better(metric)
        except DataFormatError:  # a column unknown to the registry: assume higher is better
            directions[metric] = True
    return metric_human_agreement(
        means, human, metrics, directions, resamples=options["resamples"], seed=options["seed"]
    )
