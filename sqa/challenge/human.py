"""Metric-human agreement at system level (the CCF-AATC retrospective's "metric gap").

For every metric: Spearman rho and Kendall tau-b (:mod:`sqa.stats`, as the Track-2 evaluator)
between the system means of the metric and the human system means, with percentile bootstrap
intervals over systems (:func:`sqa.stats.bootstrap_ci`). A lower-is-better metric is negated
first, so a positive value always means "agrees with listeners"; ``sign_disagrees`` flags a
metric whose rho is negative, i.e. one that orders systems against the listeners (DNSMOS SIG and
OVRL had rho = -0.8 on the retrospective's hybrid systems).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sqa.errors import DataFormatError
from sqa.fileio import flatten_row, read_rows

DEFAULT_RESAMPLES = 1000


def read_human_means(path: str | os.PathLike[str], column: str = "mos") -> dict[str, float]:
    """Human system means from a per-file or per-system table (``system_id`` + ``column``).

    Rows without a value are left out; a system without any rated row is absent.

    Raises:
        DataFormatError: No rows, no ``column``, a row without ``system_id``, or a non-number.
    """
    from sqa.data.records import parse_float

    rows = [flatten_row(row) for row in read_rows(path)]
    if not rows:
        raise DataFormatError(f"--human {path}: no rows")
    if not any(column in row for row in rows):
        raise DataFormatError(f"--human {path}: no column {column!r}")
    values: dict[str, list[float]] = {}
    for number, row in enumerate(rows, start=2):
        system = row.get("system_id", row.get("system"))
        if system in (None, ""):
            raise DataFormatError(f"--human {path}:{number}: no system_id")
        value = parse_float(row.get(column), f"{path}:{number} column {column!r}")
        if not math.isnan(value):
            values.setdefault(str(system), []).append(value)
    return {system: float(np.mean(items)) for system, items in values.items()}


def _interval(statistic: Any, first: np.ndarray, second: np.ndarray, resamples: int, seed: int):
    from sqa.stats import bootstrap_ci

    return bootstrap_ci(statistic, first, second, resamples=resamples, seed=seed)


def metric_human_agreement(
    means: Mapping[str, Mapping[str, float]],
    human: Mapping[str, float],
    metrics: Sequence[str],
    higher_is_better: Mapping[str, bool],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per metric: rho and tau with 95% bootstrap intervals, and the sign flag.

    Args:
        means: system -> metric -> system mean.
        human: system -> human mean (systems absent here are left out).
        metrics: Metric columns to check.
        higher_is_better: metric -> direction.
        resamples: Bootstrap resamples (over systems).
        seed: Bootstrap seed.

    Returns:
        Rows with ``metric``, ``direction``, ``systems``, ``spearman`` (+ ``_low``/``_high``),
        ``kendall`` (+ ``_low``/``_high``) and ``sign_disagrees``; NaN statistics when fewer
        than three systems have both values.
    """
    from sqa.stats import ktau, srcc

    rows = []
    for metric in metrics:
        systems = [s for s in means if s in human and math.isfinite(means[s].get(metric, math.nan))]
        upward = higher_is_better.get(metric, True)
        values = np.array([means[s][metric] for s in systems], dtype=float)
        oriented = values if upward else -values
        rated = np.array([human[s] for s in systems], dtype=float)
        nan_pair = (math.nan, math.nan)
        enough = len(systems) >= 3
        rho = srcc(oriented, rated) if enough else math.nan
        tau = ktau(oriented, rated) if enough else math.nan
        rho_ci = _interval(srcc, oriented, rated, resamples, seed) if enough else nan_pair
        tau_ci = _interval(ktau, oriented, rated, resamples, seed) if enough else nan_pair
        rows.append(
            {
                "metric": metric,
                "direction": "higher" if upward else "lower (negated)",
                "systems": len(systems),
                "spearman": rho,
                "spearman_low": rho_ci[0],
                "spearman_high": rho_ci[1],
                "kendall": tau,
                "kendall_low": tau_ci[0],
                "kendall_high": tau_ci[1],
                "sign_disagrees": bool(rho < 0) if math.isfinite(rho) else False,
            }
        )
    return rows
