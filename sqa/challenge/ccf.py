"""CCF-AATC 2025 speech-restoration objective score (the retrospective's Table II, Sec. II-E1).

Our reading of the rules, step by step:

1. Each metric ranks the systems by their mean (WAcc, DNSMOS and PESQ by default; ties share
   the best place, "1224", unless ``ties="dense"``).
2. The weighted average of a system's metric ranks (WAcc : DNSMOS : PESQ = 2 : 1 : 1) is ranked
   again (same tie mode): the *objective rank*.
3. Metric points fall linearly with that rank, 40 for the first to 16 for the last place:
   ``40 - (rank - 1) * 24 / (N - 1)`` for N systems (40 when N = 1); with 25 systems that is one
   point per place, as in the retrospective's Table III.
4. Parameter points by model size: < 10 M: 20, 10-20 M: 16, 20-50 M: 12, 50-100 M: 10,
   > 100 M: 8. "< 10 M" is strict and the other bands include their upper end, so exactly
   10 M gives 16, 20 M gives 16, 50 M gives 12 and 100 M gives 10.
5. Objective score = metric points + parameter points (60 at most); without any parameter count
   the score is the metric points alone (noted). Higher is better.

"DNSMOS" is the ``dnsmos_ovrl`` column by default (the rules name DNSMOS with SIG, BAK and OVRL
without saying how they combine; pass other weights to change it). The paper's Table III cannot
be recomputed exactly from its own columns (e.g. T071 is below T052 on WAcc, OVRL and PESQ, both
have 20 or 10 parameter points, yet T071 has 26 metric points and T052 25): the published
objective scores come from a ranking we cannot see, so the tests check the parameter tiers and
the point scale against the published scores and the order computed from the published columns
against the published order (Kendall tau, top places) rather than an exact match.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sqa.challenge.urgent import ChallengeTable
from sqa.errors import DataFormatError

CCF_WEIGHTS: dict[str, float] = {"wacc": 2.0, "dnsmos_ovrl": 1.0, "pesq": 1.0}
TOP_POINTS = 40.0
BOTTOM_POINTS = 16.0
# (upper bound in parameters, points, bound included?) from Table II.
PARAMETER_TIERS: tuple[tuple[float, float, bool], ...] = (
    (10e6, 20.0, False),
    (20e6, 16.0, True),
    (50e6, 12.0, True),
    (100e6, 10.0, True),
)
LARGEST_MODEL_POINTS = 8.0


def parameter_points(count: float) -> float:
    """Points of a model with ``count`` parameters (NaN for an unknown count).

    Example:
        >>> [parameter_points(m * 1e6) for m in (6.63, 10, 26.35, 82.18, 138.5)]
        [20.0, 16.0, 12.0, 10.0, 8.0]
    """
    if not math.isfinite(count):
        return math.nan
    if count < 0:
        raise DataFormatError(f"a parameter count cannot be negative, got {count}")
    for bound, points, inclusive in PARAMETER_TIERS:
        if count < bound or (inclusive and count == bound):
            return points
    return LARGEST_MODEL_POINTS


def rank_points(rank: float, count: int) -> float:
    """Metric points of objective rank ``rank`` (1 = best) among ``count`` systems.

    Example:
        >>> [rank_points(rank, 25) for rank in (1, 2, 25)]
        [40.0, 39.0, 16.0]
    """
    if count <= 1:
        return TOP_POINTS
    return TOP_POINTS - (rank - 1) * (TOP_POINTS - BOTTOM_POINTS) / (count - 1)


def _upward(metric: str) -> bool:
    """Direction of a metric column: the registry's, else higher is better."""
    from sqa.metrics.registry import METRIC_SPECS

    spec = METRIC_SPECS.get(metric)
    return True if spec is None else spec.higher_is_better


def _check_inputs(
    means: Mapping[str, Mapping[str, float]], weights: Mapping[str, float], notes: list[str]
) -> dict[str, float]:
    used: dict[str, float] = {}
    for metric, weight in weights.items():
        if weight <= 0:
            raise DataFormatError(f"CCF weight of {metric} must be positive, got {weight}")
        lacking = [s for s, row in means.items() if not math.isfinite(row.get(metric, math.nan))]
        if len(lacking) == len(means):
            notes.append(f"{metric} not in the tables: left out of the objective score")
        elif lacking:
            notes.append(f"{metric} left out: no value for {', '.join(lacking)}")
        else:
            used[metric] = float(weight)
    if not used:
        raise DataFormatError(
            f"none of the CCF-AATC metrics ({', '.join(weights)}) has a value for every system"
        )
    return used


def _parameters(
    systems: list[str], parameters: Mapping[str, float], notes: list[str]
) -> dict[str, float]:
    known = {s: float(parameters[s]) for s in systems if math.isfinite(parameters.get(s, math.nan))}
    if not known:
        notes.append("no parameter counts: the score is the metric points alone (40 at most)")
        return dict.fromkeys(systems, math.nan)
    lacking = [system for system in systems if system not in known]
    if lacking:
        raise DataFormatError(
            f"parameter count missing for {', '.join(lacking)} (a 'parameters' column, or "
            "--parameters SYSTEM=COUNT)"
        )
    return known


def ccf_table(
    means: Mapping[str, Mapping[str, float]],
    *,
    weights: Mapping[str, float] | None = None,
    parameters: Mapping[str, float] | None = None,
    ties: str = "competition",
    files: Mapping[str, int] | None = None,
) -> ChallengeTable:
    """CCF-AATC 2025 objective score of every system (see the module docstring).

    Args:
        means: system -> metric column -> mean.
        weights: metric column -> weight (default :data:`CCF_WEIGHTS`).
        parameters: system -> parameter count (absent or empty: no parameter points).
        ties: Tie mode of the metric and objective ranks.
        files: system -> number of files, copied into the rows when given.

    Returns:
        The table, best (highest score) first; equal scores share a place, listed by name.
    """
    from sqa.stats import rank_values

    notes: list[str] = []
    used = _check_inputs(means, weights or CCF_WEIGHTS, notes)
    systems = list(means)
    ranks = {
        metric: rank_values(
            [means[s][metric] for s in systems], higher_is_better=_upward(metric), ties=ties
        )
        for metric in used
    }
    total_weight = sum(used.values())
    weighted = sum(ranks[m].astype(float) * w for m, w in used.items()) / total_weight
    objective = rank_values(weighted, higher_is_better=False, ties=ties)
    counts = _parameters(systems, parameters or {}, notes)
    rows: list[dict[str, Any]] = []
    for index, system in enumerate(systems):
        metric_points = rank_points(float(objective[index]), len(systems))
        size_points = parameter_points(counts[system])
        row: dict[str, Any] = {"system_id": system}
        if files is not None:
            row["files"] = files.get(system, 0)
        for metric in used:
            row[metric] = float(means[system][metric])
            row[f"rank_{metric}"] = int(ranks[metric][index])
        row.update(
            weighted_rank=float(weighted[index]),
            objective_rank=int(objective[index]),
            metric_points=metric_points,
            parameters=counts[system],
            parameter_points=size_points,
            score=metric_points + (0.0 if math.isnan(size_points) else size_points),
        )
        rows.append(row)
    rows = _ordered(rows)
    order = [row["system_id"] for row in rows]
    return ChallengeTable(rows, order, list(used), {"objective": list(used)}, notes)


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows best first with a leading ``rank`` (equal scores share a place, listed by name)."""
    from sqa.stats import rank_values

    final = rank_values([row["score"] for row in rows], higher_is_better=True, ties="competition")
    ranked = [{"rank": int(rank), **row} for row, rank in zip(rows, final, strict=True)]
    return sorted(ranked, key=lambda row: (row["rank"], row["system_id"]))
