"""Adaptive ECS: compare only the system pairs whose order is still uncertain.

Full ECS makes ``K (K - 1) / 2 * M`` comparisons. The adaptive mode starts with a few utterances
for every system pair, then repeats rounds: fit Bradley–Terry to what has been compared, find the
pairs that are close in the current order (within ``window`` places) and not yet *resolved*, and
compare each of them on a batch of new utterances. A pair is resolved when its strength gap is
``z_threshold`` standard errors from zero, using the binomial standard error of its own
comparisons. It stops as soon as no close pair is unresolved (or has utterances left), or when the
order has stayed the same for ``patience`` consecutive rounds; if it never stops early it makes
every comparison and uses the same data as full ECS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rankers.bradley_terry import fit_bradley_terry
from rankers.ecs import outcome_table, rank_from_scores

CompareFunction = Callable[[Sequence[tuple[int, int, int]]], np.ndarray]


@dataclass(frozen=True)
class AdaptiveResult:
    """Outcome of :func:`adaptive_ranking`.

    Attributes:
        probabilities: ``(K, K, M)`` table with the comparisons made (NaN elsewhere).
        strengths: ``(K,)`` Bradley–Terry log-strengths from those comparisons.
        ranks: ``(K,)`` 1-based ranks by strength.
        comparisons: Comparisons made.
        full_comparisons: Comparisons full ECS would make.
        rounds: Rounds run after the initial one.
    """

    probabilities: np.ndarray
    strengths: np.ndarray
    ranks: np.ndarray
    comparisons: int
    full_comparisons: int
    rounds: int


def _pair_z_scores(outcomes: np.ndarray, strengths: np.ndarray) -> np.ndarray:
    """|theta_k - theta_w| over its standard error from the pair's own comparisons, ``(K, K)``."""
    made = np.isfinite(outcomes).sum(axis=2).astype(np.float64)
    probability = 1.0 / (1.0 + np.exp(-(strengths[:, None] - strengths[None, :])))
    information = made * probability * (1.0 - probability)
    gap = np.abs(strengths[:, None] - strengths[None, :])
    return gap * np.sqrt(np.maximum(information, 1e-12))


class _ComparisonLedger:
    """Which (pair, utterance) comparisons are still unused, in a fixed random order per pair."""

    def __init__(self, systems: int, utterances: int, seed: int) -> None:
        generator = np.random.default_rng(seed)
        self.queues = {
            (first, second): list(generator.permutation(utterances))
            for first in range(systems)
            for second in range(first + 1, systems)
        }

    def take(self, pair: tuple[int, int], count: int) -> list[tuple[int, int, int]]:
        queue = self.queues[pair]
        chosen, self.queues[pair] = queue[:count], queue[count:]
        return [(pair[0], pair[1], int(utterance)) for utterance in chosen]

    def take_each(self, count: int) -> list[tuple[int, int, int]]:
        """``count`` unused comparisons of every pair."""
        return [item for pair in list(self.queues) for item in self.take(pair, count)]


def adaptive_ranking(
    compare: CompareFunction,
    systems: int,
    utterances: int,
    *,
    scoring: str = "bs",
    initial_utterances: int = 4,
    batch_utterances: int = 8,
    window: int = 2,
    z_threshold: float = 2.5,
    patience: int = 3,
    seed: int = 0,
) -> AdaptiveResult:
    """Rank systems with as few pairwise comparisons as the stability rule allows.

    Args:
        compare: Called with ``(k, w, i)`` requests (``k < w``); returns ``P(k better than w)``
            on utterance ``i`` for each request as a 1-D array.
        systems: Number of systems ``K``.
        utterances: Number of shared utterances ``M``.
        scoring: ``"bs"`` or ``"nbs"`` points for the Bradley–Terry fit.
        initial_utterances: Utterances compared for every pair before adapting.
        batch_utterances: New utterances per selected pair and round.
        window: Pairs at most this many places apart in the current order are candidates.
        z_threshold: Strength gap (in standard errors) that counts as resolved.
        patience: Rounds the order must stay unchanged before stopping.
        seed: Seed of the utterance order.

    Returns:
        An :class:`AdaptiveResult`.
    """
    table = np.full((systems, systems, utterances), np.nan)
    ledger = _ComparisonLedger(systems, utterances, seed)
    _record(table, compare, ledger.take_each(initial_utterances))
    order: list[int] = []
    stable_rounds, rounds = 0, 0
    while True:
        outcomes = outcome_table(table, scoring)
        strengths = fit_bradley_terry(np.nan_to_num(outcomes, nan=0.0).sum(axis=2))
        new_order = [int(system) for system in np.argsort(-strengths, kind="stable")]
        stable_rounds = stable_rounds + 1 if new_order == order else 0
        order = new_order
        candidates = _uncertain_pairs(ledger, outcomes, strengths, order, window, z_threshold)
        if not candidates or stable_rounds >= patience:
            break
        rounds += 1
        requests = [
            item for pair in candidates[:systems] for item in ledger.take(pair, batch_utterances)
        ]
        _record(table, compare, requests)
    return AdaptiveResult(
        probabilities=table,
        strengths=strengths,
        ranks=rank_from_scores(strengths),
        comparisons=int(np.isfinite(table).sum()),
        full_comparisons=systems * (systems - 1) // 2 * utterances,
        rounds=rounds,
    )


def _record(
    table: np.ndarray, compare: CompareFunction, requests: list[tuple[int, int, int]]
) -> None:
    """Run the comparisons and store ``P(k better than w)`` at ``table[k, w, i]``."""
    if requests:
        values = np.asarray(compare(requests), dtype=np.float64)
        for (first, second, utterance), value in zip(requests, values, strict=True):
            table[first, second, utterance] = value


def _uncertain_pairs(
    ledger: _ComparisonLedger,
    outcomes: np.ndarray,
    strengths: np.ndarray,
    order: list[int],
    window: int,
    z_threshold: float,
) -> list[tuple[int, int]]:
    """Unresolved pairs close in the current order with utterances left, least certain first."""
    z_scores = _pair_z_scores(outcomes, strengths)
    position = {system: place for place, system in enumerate(order)}
    candidates = sorted(
        (z_scores[first, second], (first, second))
        for (first, second), queue in ledger.queues.items()
        if queue
        and abs(position[first] - position[second]) <= window
        and z_scores[first, second] < z_threshold
    )
    return [pair for _, pair in candidates]
