"""Bradley–Terry strengths of systems from pairwise outcomes, with bootstrap confidence intervals.

Model: ``P(k beats w) = sigmoid(theta_k - theta_w)``. Strengths are fitted with the classic
minorise-maximise iteration (Hunter, 2004) on a matrix of (possibly fractional) points; a small
pseudo-count on every pair keeps the estimate finite when a system wins or loses everything and
connects systems that were never compared. Confidence intervals resample *utterances* with
replacement (all comparisons of one utterance move together), refit, and take percentiles of the
strengths and of the ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rankers.ecs import outcome_table, rank_from_scores
from sqa.errors import DataFormatError


def fit_bradley_terry(
    points: np.ndarray, prior: float = 0.1, tolerance: float = 1e-9, max_iterations: int = 10000
) -> np.ndarray:
    """Maximum a posteriori-style Bradley–Terry log-strengths.

    Args:
        points: ``(K, K)`` points ``W[k, w]`` earned by ``k`` against ``w`` (diagonal ignored).
        prior: Pseudo-points added in both directions of every pair.
        tolerance: Stop when no log-strength moves by more than this.
        max_iterations: Iteration cap.

    Returns:
        ``(K,)`` log-strengths with mean zero (higher is better).
    """
    wins = np.array(points, dtype=np.float64)
    if wins.ndim != 2 or wins.shape[0] != wins.shape[1]:
        raise DataFormatError(f"points must be a square matrix, got shape {wins.shape}")
    if np.any(~np.isfinite(wins)) or np.any(wins < 0):
        raise DataFormatError("points must be finite and non-negative")
    np.fill_diagonal(wins, 0.0)
    wins = wins + prior * (1.0 - np.eye(wins.shape[0]))
    games = wins + wins.T
    total_wins = wins.sum(axis=1)
    strengths = np.ones(wins.shape[0])
    for _ in range(max_iterations):
        denominator = (games / (strengths[:, None] + strengths[None, :])).sum(axis=1)
        updated = total_wins / denominator
        updated /= np.exp(np.mean(np.log(updated)))
        change = np.max(np.abs(np.log(updated) - np.log(strengths)))
        strengths = updated
        if change < tolerance:
            break
    return np.log(strengths)


def bradley_terry_probability(strengths: np.ndarray) -> np.ndarray:
    """``(K, K)`` matrix of ``P(k beats w)`` implied by log-strengths ``(K,)``."""
    difference = strengths[:, None] - strengths[None, :]
    return 1.0 / (1.0 + np.exp(-difference))


@dataclass(frozen=True)
class BradleyTerryResult:
    """Strengths, ranks and bootstrap intervals of a Bradley–Terry fit (all ``(K,)``).

    Attributes:
        strengths: Log-strengths on the full data (mean zero, higher is better).
        ranks: 1-based ranks by strength.
        strength_low: Lower bootstrap bound of each strength.
        strength_high: Upper bootstrap bound of each strength.
        rank_low: Best (smallest) rank within the interval.
        rank_high: Worst (largest) rank within the interval.
    """

    strengths: np.ndarray
    ranks: np.ndarray
    strength_low: np.ndarray
    strength_high: np.ndarray
    rank_low: np.ndarray
    rank_high: np.ndarray


def bradley_terry_bootstrap(
    probabilities: np.ndarray,
    scoring: str = "bs",
    resamples: int = 200,
    confidence: float = 0.95,
    prior: float = 0.1,
    seed: int = 0,
) -> BradleyTerryResult:
    """Fit Bradley–Terry to an ECS probability table and bootstrap over utterances.

    Args:
        probabilities: ``(K, K, M)`` table as used by :func:`rankers.ecs.ecs_scores`.
        scoring: ``"bs"`` (wins count 1) or ``"nbs"`` (fractional points).
        resamples: Bootstrap resamples (0 disables the intervals: bounds equal the estimate).
        confidence: Interval coverage in (0, 1).
        prior: Pseudo-count of :func:`fit_bradley_terry`.
        seed: Seed of the resampling.

    Returns:
        A :class:`BradleyTerryResult`.
    """
    if not 0.0 < confidence < 1.0:
        raise DataFormatError(f"confidence must be in (0, 1), got {confidence}")
    outcomes = np.nan_to_num(outcome_table(probabilities, scoring), nan=0.0)
    utterances = outcomes.shape[2]
    strengths = fit_bradley_terry(outcomes.sum(axis=2), prior)
    ranks = rank_from_scores(strengths)
    if resamples <= 0 or utterances == 0:
        return BradleyTerryResult(strengths, ranks, strengths, strengths, ranks, ranks)
    generator = np.random.default_rng(seed)
    sampled_strengths = np.empty((resamples, strengths.size))
    sampled_ranks = np.empty((resamples, strengths.size))
    for index in range(resamples):
        weights = np.bincount(generator.integers(0, utterances, utterances), minlength=utterances)
        sampled = fit_bradley_terry(outcomes @ weights.astype(np.float64), prior)
        sampled_strengths[index] = sampled
        sampled_ranks[index] = rank_from_scores(sampled)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(sampled_strengths, [tail, 100.0 - tail], axis=0)
    rank_low, rank_high = np.percentile(
        sampled_ranks, [tail, 100.0 - tail], axis=0, method="nearest"
    )
    return BradleyTerryResult(
        strengths, ranks, low, high, rank_low.astype(int), rank_high.astype(int)
    )
