"""System-level ranking from utterance-level pairwise comparisons (URGENT-PK, Algorithm 1).

A *probability table* is an array ``P`` of shape ``(K, K, M)``: ``P[k, w, i]`` is the probability
that system ``k``'s output for utterance ``i`` is better than system ``w``'s, NaN where that
comparison was not made. Algorithm 1 reads the upper triangle only (``k < w``, the order in which
the pair was fed to the model); :func:`symmetrise` fills the table from both input orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sqa.errors import DataFormatError

SCORINGS = ("bs", "nbs")


def _check_table(probabilities: np.ndarray) -> np.ndarray:
    table = np.asarray(probabilities, dtype=np.float64)
    if table.ndim != 3 or table.shape[0] != table.shape[1]:
        raise DataFormatError(f"probability table must be (K, K, M), got shape {table.shape}")
    return table


def ecs_scores(probabilities: np.ndarray, scoring: str = "bs") -> np.ndarray:
    """Accumulated ECS scores ``p_k`` of Algorithm 1.

    For every unordered system pair ``k < w`` and every utterance ``i`` with a finite
    ``score = P[k, w, i]``: Binary Scoring gives one point to ``k`` if ``score > 0.5`` and
    otherwise to ``w`` (a tie at exactly 0.5 goes to ``w``, as in the paper); Non-Binary Scoring
    gives ``score`` to ``k`` and ``1 - score`` to ``w``. NaN entries (comparisons not made) are
    skipped.

    Args:
        probabilities: ``(K, K, M)`` probability table.
        scoring: ``"bs"`` or ``"nbs"``.

    Returns:
        ``(K,)`` accumulated scores.
    """
    if scoring not in SCORINGS:
        raise DataFormatError(f"unknown scoring {scoring!r}: use 'bs' or 'nbs'")
    points = pairwise_points(probabilities, scoring)
    return points.sum(axis=1)


def pairwise_points(probabilities: np.ndarray, scoring: str = "bs") -> np.ndarray:
    """Points ``W[k, w]`` that system ``k`` earned against ``w`` under Algorithm 1, ``(K, K)``."""
    table = _check_table(probabilities)
    count = table.shape[0]
    points = np.zeros((count, count))
    for first in range(count):
        for second in range(first + 1, count):
            scores = table[first, second]
            scores = scores[np.isfinite(scores)]
            if scoring == "bs":
                won = float(np.count_nonzero(scores > 0.5))
                points[first, second] += won
                points[second, first] += scores.size - won
            else:
                points[first, second] += float(scores.sum())
                points[second, first] += float((1.0 - scores).sum())
    return points


def comparison_counts(probabilities: np.ndarray) -> np.ndarray:
    """Number of finite comparisons between every unordered pair, symmetric ``(K, K)``."""
    table = _check_table(probabilities)
    upper = np.triu(np.isfinite(table).sum(axis=2), k=1)
    return upper + upper.T


def win_rate_matrix(probabilities: np.ndarray, scoring: str = "bs") -> np.ndarray:
    """Share of comparisons ``k`` won against ``w`` (NaN on the diagonal / without comparisons)."""
    counts = comparison_counts(probabilities).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = pairwise_points(probabilities, scoring) / counts
    rates[counts == 0] = np.nan
    np.fill_diagonal(rates, np.nan)
    return rates


def win_rates(probabilities: np.ndarray, scoring: str = "bs") -> np.ndarray:
    """Overall win rate of each system: ECS score over the comparisons it took part in, ``(K,)``."""
    counts = comparison_counts(probabilities).sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, ecs_scores(probabilities, scoring) / counts, np.nan)


def symmetrise(probabilities: np.ndarray) -> np.ndarray:
    """Average both input orders: ``P'[k, w] = (P[k, w] + 1 - P[w, k]) / 2`` (both triangles).

    Where only one order is finite, that order alone is used; the result satisfies
    ``P'[k, w] = 1 - P'[w, k]`` wherever it is finite.
    """
    table = _check_table(probabilities)
    forward = table
    backward = 1.0 - np.transpose(table, (1, 0, 2))
    stacked = np.stack([forward, backward])
    finite = np.isfinite(stacked)
    with np.errstate(invalid="ignore"):
        result = np.where(finite, stacked, 0.0).sum(axis=0) / finite.sum(axis=0)
    for index in range(table.shape[0]):
        result[index, index] = np.nan
    return result


def scalar_probability_table(scores: np.ndarray) -> np.ndarray:
    """Turn per-file scalar predictions ``(K, M)`` (e.g. DNSMOS) into a hard probability table.

    ``P[k, w, i]`` is 1 if system ``k`` scored higher on utterance ``i``, 0 if lower and 0.5 on a
    tie (which Binary Scoring then awards to ``w``); NaN scores give NaN comparisons.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 2:
        raise DataFormatError(f"scores must be (K, M), got shape {values.shape}")
    first = values[:, None, :]
    second = values[None, :, :]
    table = np.where(first > second, 1.0, np.where(first < second, 0.0, 0.5))
    table[~(np.isfinite(first) & np.isfinite(second))] = np.nan
    for index in range(values.shape[0]):
        table[index, index] = np.nan
    return table


def outcome_table(probabilities: np.ndarray, scoring: str = "bs") -> np.ndarray:
    """Per-comparison points of the first system, ``(K, K, M)`` (antisymmetric: ``1 - other``).

    Binary Scoring maps ``P > 0.5`` to 1 and otherwise 0; Non-Binary keeps ``P``. Only the upper
    triangle of ``probabilities`` is read, as in Algorithm 1.
    """
    table = _check_table(probabilities)
    upper = np.triu(np.ones(table.shape[:2], dtype=bool), k=1)[:, :, None]
    upper = np.broadcast_to(upper, table.shape)
    values = np.where(table > 0.5, 1.0, 0.0) if scoring == "bs" else table.copy()
    values[~np.isfinite(table)] = np.nan
    values = np.where(upper, values, np.nan)
    lower = 1.0 - np.transpose(values, (1, 0, 2))
    return np.where(upper, values, lower)


@dataclass(frozen=True)
class EcsRanking:
    """ECS result for ``K`` systems.

    Attributes:
        systems: System names in table order.
        scores: ``(K,)`` accumulated ECS scores.
        win_rates: ``(K,)`` share of comparisons won.
        ranks: ``(K,)`` 1-based ranks (1 = best; ties share the best rank).
        win_matrix: ``(K, K)`` win rate of row against column.
    """

    systems: tuple[str, ...]
    scores: np.ndarray
    win_rates: np.ndarray
    ranks: np.ndarray
    win_matrix: np.ndarray


def rank_from_scores(scores: np.ndarray) -> np.ndarray:
    """1-based competition ranks of scores, higher is better (``[3, 5, 5] -> [3, 1, 1]``)."""
    values = np.asarray(scores, dtype=np.float64)
    return np.array([1 + int(np.sum(values > value)) for value in values])


def ecs_ranking(
    probabilities: np.ndarray,
    systems: Sequence[str],
    scoring: str = "bs",
    symmetric: bool = False,
) -> EcsRanking:
    """Run Algorithm 1 (optionally on the symmetrised table) and derive ranks and win rates."""
    table = symmetrise(probabilities) if symmetric else _check_table(probabilities)
    if len(systems) != table.shape[0]:
        raise DataFormatError(f"{len(systems)} system names for a table of {table.shape[0]}")
    scores = ecs_scores(table, scoring)
    return EcsRanking(
        systems=tuple(systems),
        scores=scores,
        win_rates=win_rates(table, scoring),
        ranks=rank_from_scores(scores),
        win_matrix=win_rate_matrix(table, scoring),
    )
