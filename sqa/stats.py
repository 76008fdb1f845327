"""Statistics of the URGENT 2026 Track-2 evaluation and URGENT-style ranking aggregation.

Correlations are computed with the same library calls as the official Track-2 evaluator
(``urgent2026_sqa.utils.calculate_metrics``): MSE is the mean squared difference, LCC is
``numpy.corrcoef``, SRCC is ``scipy.stats.spearmanr`` (average ranks for ties) and KTAU is
``scipy.stats.kendalltau`` (variant b). The utterance level uses every item; the system level uses
the per-system means of the predictions and of the references.

Inputs must be free of NaN: callers drop items with missing labels first. Statistics that are
undefined (fewer than two items, or a constant input for a correlation) are NaN, quietly.

Ranking follows the URGENT challenge procedure: each metric ranks the systems (dense "1223" ties
by default, competition "1224" ties on request), ranks are averaged within each category, and the
category averages are averaged with equal weight; a lower overall score is better.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sqa.errors import DataFormatError

TRACK2_STATISTICS = (
    "utt_mse",
    "utt_lcc",
    "utt_srcc",
    "utt_ktau",
    "sys_mse",
    "sys_lcc",
    "sys_srcc",
    "sys_ktau",
)
TIE_MODES = ("dense", "competition")


def as_finite_vector(values: Any, name: str) -> np.ndarray:
    """Convert to a finite float64 vector (N,) or raise a :class:`DataFormatError`."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DataFormatError(f"{name} must be numbers ({error})") from None
    if array.ndim != 1:
        raise DataFormatError(f"{name} must be one-dimensional, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        shown = ", ".join(str(index) for index in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise DataFormatError(
            f"{name} contains {bad.size} NaN/infinite value(s) (positions {shown}); "
            "drop items with missing labels before computing statistics"
        )
    return array


def _as_pair(pred: Any, ref: Any) -> tuple[np.ndarray, np.ndarray]:
    predictions = as_finite_vector(pred, "pred")
    references = as_finite_vector(ref, "ref")
    if predictions.shape != references.shape:
        raise DataFormatError(
            f"pred and ref differ in length: {predictions.size} vs {references.size}"
        )
    return predictions, references


def _correlation_defined(predictions: np.ndarray, references: np.ndarray) -> bool:
    # Exact comparison on purpose: a constant input must give NaN, not a correlation of
    # rounding noise left over by subtracting the mean.
    return bool(
        predictions.size >= 2
        and predictions.max() != predictions.min()
        and references.max() != references.min()
    )


def mse(pred: Any, ref: Any) -> float:
    """Mean squared error between predictions (N,) and references (N,); NaN when N = 0.

    Example:
        >>> mse([1.0, 2.0, 4.0], [1.0, 2.0, 2.0])
        1.3333333333333333
    """
    predictions, references = _as_pair(pred, ref)
    if predictions.size == 0:
        return math.nan
    return float(np.mean((predictions - references) ** 2))


def lcc(pred: Any, ref: Any) -> float:
    """Linear (Pearson) correlation of (N,) and (N,); NaN when undefined.

    Example:
        >>> round(lcc([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]), 4)
        0.9934
        >>> lcc([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])  # a constant side: undefined
        nan
    """
    predictions, references = _as_pair(pred, ref)
    if not _correlation_defined(predictions, references):
        return math.nan
    return float(np.corrcoef(predictions, references)[0, 1])


def srcc(pred: Any, ref: Any) -> float:
    """Spearman rank correlation (average ranks for ties) of (N,) and (N,); NaN when undefined.

    Example:
        >>> round(srcc([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]), 4)
        0.8
    """
    predictions, references = _as_pair(pred, ref)
    if not _correlation_defined(predictions, references):
        return math.nan
    import scipy.stats  # imported on use: ~0.5 s, and `sqa <command> --help` needs none

    return float(scipy.stats.spearmanr(predictions, references).statistic)


def ktau(pred: Any, ref: Any) -> float:
    """Kendall tau-b of (N,) and (N,) (ties counted as in scipy's default); NaN when undefined.

    Example:
        >>> round(ktau([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]), 4)
        0.6667
    """
    predictions, references = _as_pair(pred, ref)
    if not _correlation_defined(predictions, references):
        return math.nan
    import scipy.stats

    return float(scipy.stats.kendalltau(predictions, references, variant="b").statistic)


def system_means(
    pred: Any, ref: Any, system_ids: Sequence[str]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per-system means of predictions and references.

    Args:
        pred: Predictions (N,).
        ref: References (N,).
        system_ids: System of each item (N,).

    Returns:
        Sorted system ids (S,), mean predictions (S,) and mean references (S,).
    """
    predictions, references = _as_pair(pred, ref)
    systems = [str(system) for system in system_ids]
    if len(systems) != predictions.size:
        raise DataFormatError(
            f"system_ids and pred differ in length: {len(systems)} vs {predictions.size}"
        )
    names, inverse = np.unique(np.asarray(systems, dtype=object), return_inverse=True)
    counts = np.bincount(inverse, minlength=len(names))
    mean_predictions = np.bincount(inverse, weights=predictions, minlength=len(names)) / counts
    mean_references = np.bincount(inverse, weights=references, minlength=len(names)) / counts
    return [str(name) for name in names], mean_predictions, mean_references


def _four_statistics(predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    return {
        "mse": mse(predictions, references),
        "lcc": lcc(predictions, references),
        "srcc": srcc(predictions, references),
        "ktau": ktau(predictions, references),
    }


def track2_metrics(pred: Any, ref: Any, system_ids: Sequence[str]) -> dict[str, float]:
    """The eight Track-2 numbers: MSE, LCC, SRCC, KTAU at utterance and system level.

    Args:
        pred: Predicted scores (N,).
        ref: Reference scores (N,), e.g. MOS labels, without missing values.
        system_ids: System of each item (N,); the system level compares per-system means.

    Returns:
        A dict with the keys of :data:`TRACK2_STATISTICS` (NaN where a statistic is undefined).
    """
    predictions, references = _as_pair(pred, ref)
    _, system_predictions, system_references = system_means(predictions, references, system_ids)
    utterance = _four_statistics(predictions, references)
    system = _four_statistics(system_predictions, system_references)
    result = {f"utt_{name}": value for name, value in utterance.items()}
    result.update({f"sys_{name}": value for name, value in system.items()})
    return {key: result[key] for key in TRACK2_STATISTICS}


def bootstrap_ci(
    statistic: Callable[..., float],
    *arrays: Any,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic(*arrays)``.

    Items (the first axis, shared by all arrays) are resampled with replacement; resamples on
    which the statistic is NaN (e.g. a constant resample) are left out.

    Args:
        statistic: Function of the resampled arrays returning a float.
        *arrays: One or more arrays of equal length N (numbers or ids such as system names).
        resamples: Number of bootstrap resamples.
        confidence: Coverage of the interval, in (0, 1).
        seed: Seed of the resampling generator (same seed, same interval).

    Returns:
        ``(low, high)``; ``(nan, nan)`` when no resample gives a finite value.
    """
    if not arrays:
        raise DataFormatError("bootstrap_ci needs at least one array")
    if not 0.0 < confidence < 1.0:
        raise DataFormatError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise DataFormatError(f"resamples must be positive, got {resamples}")
    columns = [np.asarray(array) for array in arrays]
    length = len(columns[0])
    if any(len(column) != length for column in columns):
        lengths = ", ".join(str(len(column)) for column in columns)
        raise DataFormatError(f"bootstrap arrays differ in length: {lengths}")
    if length == 0:
        return math.nan, math.nan
    generator = np.random.default_rng(seed)
    values = np.empty(resamples)
    for index in range(resamples):
        chosen = generator.integers(0, length, size=length)
        values[index] = statistic(*(column[chosen] for column in columns))
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def rank_values(values: Any, *, higher_is_better: bool, ties: str = "dense") -> np.ndarray:
    """Rank values, 1 = best.

    Args:
        values: Scores (N,) without NaN.
        higher_is_better: Direction of the score.
        ties: ``"dense"`` ("1223": the next distinct value gets the next integer) or
            ``"competition"`` ("1224": the next distinct value skips the tied places).

    Returns:
        Integer ranks (N,).

    Example:
        >>> rank_values([3.0, 4.0, 4.0, 1.0], higher_is_better=True).tolist()
        [2, 1, 1, 3]
        >>> rank_values([3.0, 4.0, 4.0, 1.0], higher_is_better=True, ties="competition").tolist()
        [3, 1, 1, 4]
    """
    if ties not in TIE_MODES:
        raise DataFormatError(f"unknown tie mode {ties!r}; use one of {', '.join(TIE_MODES)}")
    scores = as_finite_vector(values, "values")
    oriented = -scores if higher_is_better else scores
    if ties == "dense":
        distinct = np.unique(oriented)
        return np.searchsorted(distinct, oriented).astype(np.int64) + 1
    ordered = np.sort(oriented)
    # Competition rank = 1 + number of strictly better values.
    return np.searchsorted(ordered, oriented, side="left").astype(np.int64) + 1


@dataclass(frozen=True)
class RankingResult:
    """Every stage of an URGENT-style ranking.

    Attributes:
        metric_ranks: metric -> system -> rank (1 = best).
        category_ranks: category -> system -> mean rank over the category's metrics.
        overall: system -> mean of the category ranks (lower is better).
        final_rank: system -> rank of ``overall`` with the same tie mode.
    """

    metric_ranks: dict[str, dict[str, int]]
    category_ranks: dict[str, dict[str, float]]
    overall: dict[str, float]
    final_rank: dict[str, int]

    def ordered(self) -> list[tuple[str, float, int]]:
        """``(system, overall score, final rank)`` from best to worst (ties by name)."""
        return sorted(
            ((system, score, self.final_rank[system]) for system, score in self.overall.items()),
            key=lambda row: (row[2], row[1], row[0]),
        )


def _check_ranking_inputs(
    scores: Mapping[str, Mapping[str, float]],
    categories: Mapping[str, Sequence[str]],
    higher_is_better: Mapping[str, bool],
) -> None:
    if not scores:
        raise DataFormatError("no systems to rank")
    if not categories:
        raise DataFormatError("no metric categories given")
    for category, metrics in categories.items():
        if isinstance(metrics, str) or not metrics:
            raise DataFormatError(f"category {category!r} must list at least one metric")
        for metric in metrics:
            if metric not in higher_is_better:
                raise DataFormatError(f"no direction (higher_is_better) given for {metric!r}")
            lacking = sorted(system for system, row in scores.items() if metric not in row)
            if lacking:
                raise DataFormatError(f"metric {metric!r} missing for: {', '.join(lacking)}")


def rank_systems(
    scores: Mapping[str, Mapping[str, float]],
    categories: Mapping[str, Sequence[str]],
    higher_is_better: Mapping[str, bool],
    ties: str = "dense",
    *,
    rerank_categories: bool = False,
) -> RankingResult:
    """URGENT-style ranking of systems over metric categories.

    The category score is the average of the metric ranks within the category and the overall
    score the average of the category scores. With ``rerank_categories`` each category average is
    ranked again (same tie mode) before the categories are averaged, as the URGENT 2026 Track-2
    evaluation's pseudo-code does (a ``get_ranking`` around each category mean); the two can
    order systems differently when categories disagree.

    Args:
        scores: system -> metric -> average score of the system (no NaN).
        categories: category -> metrics in it (each category weighs the same).
        higher_is_better: metric -> direction.
        ties: ``"dense"`` (the URGENT choice) or ``"competition"``.
        rerank_categories: Rank the category averages before averaging them.

    Returns:
        A :class:`RankingResult` (``category_ranks`` holds the re-ranked values when asked).
    """
    _check_ranking_inputs(scores, categories, higher_is_better)
    systems = list(scores)
    metric_ranks: dict[str, dict[str, int]] = {}
    for metric in dict.fromkeys(name for names in categories.values() for name in names):
        column = [scores[system][metric] for system in systems]
        try:
            ranks = rank_values(column, higher_is_better=higher_is_better[metric], ties=ties)
        except DataFormatError as error:
            raise DataFormatError(f"metric {metric!r}: {error}") from None
        metric_ranks[metric] = {
            system: int(rank) for system, rank in zip(systems, ranks, strict=True)
        }
    category_ranks = {
        category: {
            system: float(np.mean([metric_ranks[metric][system] for metric in metrics]))
            for system in systems
        }
        for category, metrics in categories.items()
    }
    if rerank_categories:
        for category, means in category_ranks.items():
            ranks = rank_values(list(means.values()), higher_is_better=False, ties=ties)
            category_ranks[category] = {
                system: float(rank) for system, rank in zip(means, ranks, strict=True)
            }
    overall = {
        system: float(np.mean([category_ranks[category][system] for category in categories]))
        for system in systems
    }
    final = rank_values([overall[system] for system in systems], higher_is_better=False, ties=ties)
    final_rank = {system: int(rank) for system, rank in zip(systems, final, strict=True)}
    return RankingResult(metric_ranks, category_ranks, overall, final_rank)


def aggregate_ranks(
    scores: Mapping[str, Mapping[str, float]],
    categories: Mapping[str, Sequence[str]],
    higher_is_better: Mapping[str, bool],
    ties: str = "dense",
) -> dict[str, float]:
    """Overall URGENT-style score of each system (mean of category mean ranks; lower is better).

    See :func:`rank_systems` for the arguments and for every intermediate stage.
    """
    return rank_systems(scores, categories, higher_is_better, ties).overall


def final_ranking(
    overall: Mapping[str, float], ties: str = "dense"
) -> list[tuple[str, float, int]]:
    """Order systems by an overall score from :func:`aggregate_ranks`.

    Args:
        overall: system -> overall score (lower is better).
        ties: Tie mode of the final rank.

    Returns:
        ``(system, score, rank)`` from best to worst; equal scores share a rank, listed by name.
    """
    systems = list(overall)
    ranks = rank_values([overall[system] for system in systems], higher_is_better=False, ties=ties)
    rows = [
        (system, float(overall[system]), int(rank))
        for system, rank in zip(systems, ranks, strict=True)
    ]
    return sorted(rows, key=lambda row: (row[2], row[0]))
