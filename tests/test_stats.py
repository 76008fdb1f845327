"""Track-2 statistics against scipy and hand computation; URGENT-style ranking aggregation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats

from sqa import stats
from sqa.errors import DataFormatError


@pytest.mark.parametrize("with_ties", [False, True])
def test_statistics_match_scipy_on_random_data(with_ties: bool) -> None:
    generator = np.random.default_rng(7)
    for _ in range(5):
        reference = generator.normal(3.0, 1.0, size=60)
        prediction = reference + generator.normal(0.0, 0.8, size=60)
        if with_ties:
            reference, prediction = np.round(reference * 2) / 2, np.round(prediction)
        assert stats.mse(prediction, reference) == pytest.approx(
            np.mean((prediction - reference) ** 2)
        )
        assert stats.lcc(prediction, reference) == pytest.approx(
            scipy.stats.pearsonr(prediction, reference).statistic
        )
        assert stats.srcc(prediction, reference) == pytest.approx(
            scipy.stats.spearmanr(prediction, reference).statistic
        )
        assert stats.ktau(prediction, reference) == pytest.approx(
            scipy.stats.kendalltau(prediction, reference, variant="b").statistic
        )


def test_hand_computed_case_with_ties() -> None:
    prediction, reference = [1, 2, 2, 3], [1, 2, 3, 4]
    # Squared errors 0, 0, 1, 1.
    assert stats.mse(prediction, reference) == pytest.approx(0.5)
    # Centred: (-1, 0, 0, 1) and (-1.5, -.5, .5, 1.5): 3 / sqrt(2 * 5).
    assert stats.lcc(prediction, reference) == pytest.approx(3 / math.sqrt(10))
    # Average ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): 4.5 / sqrt(4.5 * 5).
    assert stats.srcc(prediction, reference) == pytest.approx(4.5 / math.sqrt(22.5))
    # 6 pairs: 5 concordant, 1 tied in pred only: tau-b = 5 / sqrt((6 - 1) * (6 - 0)).
    assert stats.ktau(prediction, reference) == pytest.approx(5 / math.sqrt(30))
    # Perfectly reversed order.
    assert stats.ktau([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0)
    assert stats.srcc([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0)


def test_track2_metrics_system_level_uses_per_system_means() -> None:
    prediction = [1.0, 3.0, 4.0, 2.0, 2.0, 2.0]
    reference = [2.0, 2.0, 5.0, 1.0, 2.0, 3.0]
    systems = ["a", "a", "b", "c", "c", "c"]
    result = stats.track2_metrics(prediction, reference, systems)
    assert tuple(result) == stats.TRACK2_STATISTICS
    # System means: pred (2, 4, 2), ref (2, 5, 2).
    assert result["sys_mse"] == pytest.approx(1 / 3)
    assert result["sys_lcc"] == pytest.approx(1.0)
    assert result["sys_srcc"] == pytest.approx(1.0)
    assert result["sys_ktau"] == pytest.approx(1.0)
    assert result["utt_mse"] == pytest.approx(stats.mse(prediction, reference))
    assert result["utt_ktau"] == pytest.approx(stats.ktau(prediction, reference))
    order = [5, 2, 0, 4, 1, 3]
    shuffled = stats.track2_metrics(
        [prediction[i] for i in order], [reference[i] for i in order], [systems[i] for i in order]
    )
    assert shuffled == pytest.approx(result)


def test_track2_system_level_matches_scipy_on_random_systems() -> None:
    generator = np.random.default_rng(5)
    systems = [f"system{index}" for index in generator.integers(0, 8, size=120)]
    reference = generator.uniform(1.0, 5.0, size=120)
    prediction = reference + generator.normal(0.0, 0.7, size=120)
    names = sorted(set(systems))
    mask = np.array([[system == name for system in systems] for name in names])
    mean_prediction = np.array([prediction[row].mean() for row in mask])
    mean_reference = np.array([reference[row].mean() for row in mask])
    result = stats.track2_metrics(prediction, reference, systems)
    assert result["sys_mse"] == pytest.approx(np.mean((mean_prediction - mean_reference) ** 2))
    assert result["sys_lcc"] == pytest.approx(np.corrcoef(mean_prediction, mean_reference)[0, 1])
    expected_srcc = scipy.stats.spearmanr(mean_prediction, mean_reference).statistic
    assert result["sys_srcc"] == pytest.approx(expected_srcc)
    expected_ktau = scipy.stats.kendalltau(mean_prediction, mean_reference).statistic
    assert result["sys_ktau"] == pytest.approx(expected_ktau)


def test_undefined_correlations_are_nan_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for function in (stats.lcc, stats.srcc, stats.ktau):
            assert math.isnan(function([0.1, 0.1, 0.1], [1.0, 2.0, 3.0]))
            assert math.isnan(function([1.0, 2.0], [3.0, 3.0]))
            assert math.isnan(function([1.0], [2.0]))
        assert math.isnan(stats.mse([], []))
        result = stats.track2_metrics([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], ["a", "a", "a"])
    assert math.isnan(result["sys_lcc"]) and result["utt_lcc"] == pytest.approx(0.5)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(DataFormatError, match="differ in length"):
        stats.lcc([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(DataFormatError, match="NaN"):
        stats.srcc([1.0, float("nan"), 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(DataFormatError, match="system_ids"):
        stats.track2_metrics([1.0, 2.0], [1.0, 2.0], ["a"])
    with pytest.raises(DataFormatError, match="one-dimensional"):
        stats.mse([[1.0, 2.0]], [[1.0, 2.0]])


def test_bootstrap_interval_is_seeded_and_matches_normal_theory() -> None:
    generator = np.random.default_rng(3)
    sample = generator.normal(0.0, 1.0, size=400)
    low, high = stats.bootstrap_ci(np.mean, sample, resamples=500, seed=1)
    assert (low, high) == stats.bootstrap_ci(np.mean, sample, resamples=500, seed=1)
    assert low < sample.mean() < high
    # Normal theory: half-width 1.96 * sd / sqrt(n).
    expected = 1.96 * sample.std() / math.sqrt(sample.size)
    assert (high - low) / 2 == pytest.approx(expected, rel=0.2)
    reference = sample + generator.normal(0.0, 0.5, size=400)
    low, high = stats.bootstrap_ci(stats.lcc, sample, reference, resamples=200)
    assert low < stats.lcc(sample, reference) < high


def test_bootstrap_edge_cases() -> None:
    assert all(math.isnan(value) for value in stats.bootstrap_ci(stats.lcc, [1.0] * 5, [2.0] * 5))
    with pytest.raises(DataFormatError, match="differ in length"):
        stats.bootstrap_ci(stats.lcc, [1.0, 2.0], [1.0])
    with pytest.raises(DataFormatError, match="confidence"):
        stats.bootstrap_ci(np.mean, [1.0, 2.0], confidence=1.5)


def test_rank_values_tie_modes_and_direction() -> None:
    values = [0.9, 0.7, 0.9, 0.5, 0.7]
    dense = stats.rank_values(values, higher_is_better=True, ties="dense")
    competition = stats.rank_values(values, higher_is_better=True, ties="competition")
    assert dense.tolist() == [1, 2, 1, 3, 2]
    assert competition.tolist() == [1, 3, 1, 5, 3]
    assert stats.rank_values(values, higher_is_better=False).tolist() == [3, 2, 3, 1, 2]
    lower = stats.rank_values(values, higher_is_better=False, ties="competition")
    assert lower.tolist() == [4, 2, 4, 1, 2]
    with pytest.raises(DataFormatError, match="tie mode"):
        stats.rank_values(values, higher_is_better=True, ties="average")
    with pytest.raises(DataFormatError, match="NaN"):
        stats.rank_values([1.0, float("nan")], higher_is_better=True)


# A Track-2 style table: error (lower is better), linear and rank correlation (higher is better).
CATEGORIES = {
    "error": ["sys_mse", "utt_mse"],
    "linear": ["sys_lcc", "utt_lcc"],
    "rank": ["sys_srcc", "utt_srcc", "sys_ktau", "utt_ktau"],
}
DIRECTIONS = {
    metric: not metric.endswith("mse") for names in CATEGORIES.values() for metric in names
}
TABLE = {
    #     sys_mse utt_mse sys_lcc utt_lcc sys_srcc utt_srcc sys_ktau utt_ktau
    "A": (0.10, 0.50, 0.9, 0.6, 0.8, 0.5, 0.7, 0.4),
    "B": (0.20, 0.30, 0.9, 0.7, 0.9, 0.4, 0.7, 0.3),
    "C": (0.20, 0.60, 0.8, 0.7, 0.9, 0.5, 0.6, 0.3),
    "D": (0.40, 0.30, 0.7, 0.5, 0.9, 0.3, 0.8, 0.2),
}
METRICS = [metric for names in CATEGORIES.values() for metric in names]
SCORES = {system: dict(zip(METRICS, row, strict=True)) for system, row in TABLE.items()}
# Per-metric ranks of A, B, C, D worked out by hand from TABLE.
HAND_RANKS = {
    "dense": {
        "sys_mse": (1, 2, 2, 3),
        "utt_mse": (2, 1, 3, 1),
        "sys_lcc": (1, 1, 2, 3),
        "utt_lcc": (2, 1, 1, 3),
        "sys_srcc": (2, 1, 1, 1),
        "utt_srcc": (1, 2, 1, 3),
        "sys_ktau": (2, 2, 3, 1),
        "utt_ktau": (1, 2, 2, 3),
    },
    "competition": {
        "sys_mse": (1, 2, 2, 4),
        "utt_mse": (3, 1, 4, 1),
        "sys_lcc": (1, 1, 3, 4),
        "utt_lcc": (3, 1, 1, 4),
        "sys_srcc": (4, 1, 1, 1),
        "utt_srcc": (1, 3, 1, 4),
        "sys_ktau": (2, 2, 4, 1),
        "utt_ktau": (1, 2, 2, 4),
    },
}
# Category means by hand: dense error A (1+2)/2, linear A (1+2)/2, rank A (2+1+2+1)/4, ...
HAND_OVERALL = {
    "dense": {
        "A": (1.5 + 1.5 + 1.5) / 3,
        "B": (1.5 + 1.0 + 1.75) / 3,
        "C": (2.5 + 1.5 + 1.75) / 3,
        "D": (2.0 + 3.0 + 2.0) / 3,
    },
    "competition": {
        "A": (2.0 + 2.0 + 2.0) / 3,
        "B": (1.5 + 1.0 + 2.0) / 3,
        "C": (3.0 + 2.0 + 2.0) / 3,
        "D": (2.5 + 4.0 + 2.5) / 3,
    },
}


@pytest.mark.parametrize("ties", ["dense", "competition"])
def test_worked_ranking_example(ties: str) -> None:
    result = stats.rank_systems(SCORES, CATEGORIES, DIRECTIONS, ties=ties)
    for metric, ranks in HAND_RANKS[ties].items():
        assert tuple(result.metric_ranks[metric][system] for system in "ABCD") == ranks
    assert result.overall == pytest.approx(HAND_OVERALL[ties])
    assert stats.aggregate_ranks(SCORES, CATEGORIES, DIRECTIONS, ties) == result.overall
    assert [row[0] for row in result.ordered()] == ["B", "A", "C", "D"]
    assert [row[0] for row in stats.final_ranking(result.overall, ties)] == ["B", "A", "C", "D"]


def test_final_ranking_ties_and_category_weighting() -> None:
    ordered = stats.final_ranking({"x": 2.0, "y": 1.0, "z": 2.0, "w": 3.0}, ties="competition")
    assert ordered == [("y", 1.0, 1), ("x", 2.0, 2), ("z", 2.0, 2), ("w", 3.0, 4)]
    dense = stats.final_ranking({"x": 2.0, "y": 1.0, "z": 2.0, "w": 3.0})
    assert [row[2] for row in dense] == [1, 2, 2, 3]
    # One metric in "one", three in "many": each category still weighs one half.
    scores = {"p": {"m1": 1.0, "m2": 0.0, "m3": 0.0, "m4": 0.0}, "q": {"m1": 0.0, "m2": 1.0}}
    scores["q"].update(m3=1.0, m4=1.0)
    overall = stats.aggregate_ranks(
        scores, {"one": ["m1"], "many": ["m2", "m3", "m4"]}, dict.fromkeys(scores["p"], True)
    )
    assert overall == {"p": pytest.approx(1.5), "q": pytest.approx(1.5)}


def test_ranking_input_errors() -> None:
    with pytest.raises(DataFormatError, match="missing for: B"):
        stats.aggregate_ranks({"A": {"m": 1.0}, "B": {}}, {"c": ["m"]}, {"m": True})
    with pytest.raises(DataFormatError, match="direction"):
        stats.aggregate_ranks({"A": {"m": 1.0}}, {"c": ["m"]}, {})
    with pytest.raises(DataFormatError, match="'m'.*NaN"):
        stats.aggregate_ranks({"A": {"m": float("nan")}}, {"c": ["m"]}, {"m": True})
