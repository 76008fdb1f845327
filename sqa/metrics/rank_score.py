"""Utterance-level URGENT-style rank score (Uni-VERSA-Ext, section II-B f).

For every source recording, all its enhanced versions (one per system) are ranked on each metric
(rank 1 = best, following the metric's direction from the registry; ties share their average rank;
a NaN value ranks below every real value). The per-metric ranks are combined as a weighted mean
``R`` (equal weights by default) and normalised by the number ``N`` of versions of that source:

    rank_score = (N - R) / (N - 1)

so 1 means best on every metric, 0 worst on every metric, and scores are comparable across sources
with different numbers of versions. A source with a single version gets NaN (nothing to rank).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from sqa.metrics.registry import get_metric_spec


def _metric_ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Average ranks (1 = best) of one metric over N versions; NaNs share the worst ranks."""
    oriented = -values if higher_is_better else values.copy()
    oriented[np.isnan(oriented)] = np.inf
    import scipy.stats  # imported on use: `sqa <command> --help` needs none

    return scipy.stats.rankdata(oriented, method="average")


def rank_scores(
    rows: Sequence[Mapping[str, object]],
    metric_names: Sequence[str],
    *,
    weights: Mapping[str, float] | None = None,
    group_key: str = "utterance_id",
) -> list[float]:
    """Rank score of every row among the rows that share its source recording.

    Args:
        rows: Mappings with a ``"metrics"`` dict and a source id under ``group_key`` (falling back
            to ``"sample_id"`` when absent, as in the folder layout).
        metric_names: Registry keys to rank on (their direction comes from the registry).
        weights: Optional metric -> weight (missing metrics weigh 1).
        group_key: Field naming the source recording.

    Returns:
        One score per row, in the order of ``rows``.
    """
    if not metric_names:
        raise ValueError("rank_score needs at least one metric")
    groups: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        source = row.get(group_key) or row.get("sample_id")
        groups[str(source)].append(index)
    metric_weights = np.array([(weights or {}).get(name, 1.0) for name in metric_names])
    directions = [get_metric_spec(name).higher_is_better for name in metric_names]
    scores = [float("nan")] * len(rows)
    for members in groups.values():
        count = len(members)
        if count < 2:
            continue
        table = np.array(
            [
                [float(rows[i]["metrics"].get(name, np.nan)) for name in metric_names]
                for i in members
            ]
        )  # (versions, metrics)
        ranks = np.stack(
            [
                _metric_ranks(table[:, column], directions[column])
                for column in range(table.shape[1])
            ],
            axis=1,
        )
        mean_rank = ranks @ metric_weights / metric_weights.sum()
        for position, index in enumerate(members):
            scores[index] = float((count - mean_rank[position]) / (count - 1))
    return scores
