"""Agreement of predicted scores with human ratings: the development-set measure.

Three statistics, each with a bootstrap 95% confidence interval:

* **within-group pairwise accuracy**: over every pair of items of the same group (e.g. the
  versions of one sentence produced by different systems) whose human values differ, the share
  whose predicted order agrees with the human order; a predicted tie counts one half;
* **stimulus-level Spearman** rank correlation over all items (:func:`sqa.stats.srcc`);
* **system-level Kendall tau-b** of the per-system means (:func:`sqa.stats.ktau`).

The interval resamples whole groups with replacement (seeded), so the within-group pairs stay
intact. Inputs must be free of NaN: callers drop (and report) missing predictions first.
Predictions are "higher is better"; negate lower-is-better scores before calling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sqa.errors import DataFormatError
from sqa.stats import as_finite_vector, bootstrap_ci, ktau, srcc, system_means

DEFAULT_RESAMPLES = 1000


def _check_lengths(**columns: Sequence[Any]) -> int:
    lengths = {name: len(column) for name, column in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name} {length}" for name, length in lengths.items())
        raise DataFormatError(f"inputs differ in length: {shown}")
    return next(iter(lengths.values()), 0)


def _group_index(groups: Sequence[Any]) -> tuple[np.ndarray, int]:
    """Integer group of each item (N,) and the number of groups."""
    labels = np.asarray([str(group) for group in groups], dtype=object)
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    names, inverse = np.unique(labels, return_inverse=True)
    return inverse.astype(np.int64), len(names)


def _pair_credit(human: np.ndarray, predicted: np.ndarray) -> tuple[float, int]:
    """Credit (1 agree, 0.5 predicted tie, 0 disagree) summed over pairs of one group."""
    upper = np.triu_indices(human.size, k=1)
    human_order = np.sign(human[:, None] - human[None, :])[upper]
    predicted_order = np.sign(predicted[:, None] - predicted[None, :])[upper]
    counted = human_order != 0
    credit = np.where(predicted_order == 0, 0.5, (human_order == predicted_order).astype(float))
    return float(credit[counted].sum()), int(counted.sum())


def group_pair_credits(
    human: Any, predicted: Any, groups: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-group pairwise credit and pair count, the pieces of :func:`pairwise_accuracy`.

    Args:
        human: Human values (N,), no NaN.
        predicted: Predicted values (N,), no NaN, higher is better.
        groups: Group of each item (N,); only pairs inside a group are compared.

    Returns:
        Credits (G,) and counted pairs (G,) per group, groups in sorted order of their names.
    """
    references = as_finite_vector(human, "human")
    predictions = as_finite_vector(predicted, "predicted")
    _check_lengths(human=references, predicted=predictions, groups=groups)
    index, count = _group_index(groups)
    credits, pairs = np.zeros(count), np.zeros(count, dtype=np.int64)
    for group in range(count):
        members = index == group
        credits[group], pairs[group] = _pair_credit(references[members], predictions[members])
    return credits, pairs


def pairwise_accuracy(human: Any, predicted: Any, groups: Sequence[Any]) -> tuple[float, int]:
    """Within-group pairwise accuracy against human values.

    Args:
        human: Human values (N,), no NaN.
        predicted: Predicted values (N,), no NaN, higher is better.
        groups: Group of each item (N,); only pairs inside a group are compared.

    Returns:
        ``(accuracy, pairs)``: the share of within-group pairs with different human values whose
        predicted order agrees (a predicted tie counts 0.5), NaN when there is no such pair, and
        the number of those pairs.
    """
    credits, pairs = group_pair_credits(human, predicted, groups)
    total = int(pairs.sum())
    return (float(credits.sum()) / total if total else math.nan), total


def system_kendall(human: Any, predicted: Any, systems: Sequence[Any]) -> float:
    """Kendall tau-b between the per-system means of predictions and of human values."""
    _, predicted_means, human_means = system_means(predicted, human, [str(s) for s in systems])
    return ktau(predicted_means, human_means)


@dataclass(frozen=True)
class AgreementResult:
    """Agreement of one scorer with human ratings.

    Attributes:
        items: Number of items used (N).
        groups: Number of groups (G).
        pairs: Within-group pairs with different human values.
        pairwise_accuracy: Within-group pairwise accuracy (NaN without pairs).
        pairwise_ci: Bootstrap interval of the pairwise accuracy.
        srcc: Stimulus-level Spearman correlation.
        srcc_ci: Bootstrap interval of ``srcc``.
        ktau: System-level Kendall tau-b of per-system means.
        ktau_ci: Bootstrap interval of ``ktau``.
        system_means: system -> ``{"predicted", "human", "items"}`` (plain means, no ECS).
    """

    items: int
    groups: int
    pairs: int
    pairwise_accuracy: float
    pairwise_ci: tuple[float, float]
    srcc: float
    srcc_ci: tuple[float, float]
    ktau: float
    ktau_ci: tuple[float, float]
    system_means: dict[str, dict[str, float]]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict (intervals as ``[low, high]``)."""
        return {
            "items": self.items,
            "groups": self.groups,
            "pairs": self.pairs,
            "pairwise_accuracy": self.pairwise_accuracy,
            "pairwise_ci": list(self.pairwise_ci),
            "srcc": self.srcc,
            "srcc_ci": list(self.srcc_ci),
            "ktau": self.ktau,
            "ktau_ci": list(self.ktau_ci),
            "system_means": self.system_means,
        }


def _per_system(
    human: np.ndarray, predicted: np.ndarray, systems: list[str]
) -> dict[str, dict[str, float]]:
    if not systems:
        return {}
    names, predicted_means, human_means = system_means(predicted, human, systems)
    counts = {name: systems.count(name) for name in names}
    return {
        name: {"predicted": float(p), "human": float(h), "items": counts[name]}
        for name, p, h in zip(names, predicted_means, human_means, strict=True)
    }


@dataclass(frozen=True)
class _GroupResampler:
    """Statistics of the items of a list of (possibly repeated) groups, for the bootstrap."""

    human: np.ndarray
    predicted: np.ndarray
    systems: np.ndarray
    members: list[np.ndarray]
    credits: np.ndarray
    pairs: np.ndarray

    def rows(self, chosen: np.ndarray) -> np.ndarray:
        """Item indices of the chosen groups (repeats kept)."""
        if not chosen.size:
            return chosen
        return np.concatenate([self.members[group] for group in chosen])

    def accuracy(self, chosen: np.ndarray) -> float:
        """Pairwise accuracy over the chosen groups."""
        total = self.pairs[chosen].sum()
        return float(self.credits[chosen].sum() / total) if total else math.nan

    def srcc(self, chosen: np.ndarray) -> float:
        """Stimulus-level Spearman over the items of the chosen groups."""
        rows = self.rows(chosen)
        return srcc(self.predicted[rows], self.human[rows])

    def ktau(self, chosen: np.ndarray) -> float:
        """System-level Kendall tau-b over the items of the chosen groups."""
        rows = self.rows(chosen)
        return system_kendall(self.human[rows], self.predicted[rows], list(self.systems[rows]))


def _resampler(
    human: Any, predicted: Any, groups: Sequence[Any], systems: Sequence[Any]
) -> _GroupResampler:
    references = as_finite_vector(human, "human")
    predictions = as_finite_vector(predicted, "predicted")
    names = [str(system) for system in systems]
    _check_lengths(human=references, predicted=predictions, groups=groups, systems=names)
    credits, pairs = group_pair_credits(references, predictions, groups)
    index, count = _group_index(groups)
    members = [np.flatnonzero(index == group) for group in range(count)]
    return _GroupResampler(
        references, predictions, np.asarray(names, dtype=object), members, credits, pairs
    )


def agreement(
    human: Any,
    predicted: Any,
    groups: Sequence[Any],
    systems: Sequence[Any],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> AgreementResult:
    """All agreement statistics with bootstrap intervals over resampled groups.

    Args:
        human: Human values (N,), no NaN.
        predicted: Predicted values (N,), no NaN, higher is better.
        groups: Group of each item (N,), e.g. the utterance (sentence) id.
        systems: System of each item (N,).
        resamples: Bootstrap resamples (the same resamples serve all three statistics).
        seed: Seed of the resampling.
        confidence: Coverage of the intervals.

    Returns:
        An :class:`AgreementResult`.
    """
    items = _resampler(human, predicted, groups, systems)
    everything = np.arange(len(items.members))
    settings = {"resamples": resamples, "confidence": confidence, "seed": seed}
    return AgreementResult(
        items=int(items.human.size),
        groups=len(items.members),
        pairs=int(items.pairs.sum()),
        pairwise_accuracy=items.accuracy(everything),
        pairwise_ci=bootstrap_ci(items.accuracy, everything, **settings),
        srcc=srcc(items.predicted, items.human),
        srcc_ci=bootstrap_ci(items.srcc, everything, **settings),
        ktau=items.ktau(everything),
        ktau_ci=bootstrap_ci(items.ktau, everything, **settings),
        system_means=_per_system(items.human, items.predicted, list(items.systems)),
    )
