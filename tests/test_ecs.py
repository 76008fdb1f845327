"""ECS (Algorithm 1), symmetrisation, scalar predictors, Bradley–Terry and the adaptive mode."""

from __future__ import annotations

import numpy as np
import pytest

from rankers.adaptive import adaptive_ranking
from rankers.bradley_terry import (
    bradley_terry_bootstrap,
    bradley_terry_probability,
    fit_bradley_terry,
)
from rankers.ecs import (
    ecs_ranking,
    ecs_scores,
    rank_from_scores,
    scalar_probability_table,
    symmetrise,
    win_rate_matrix,
)
from sqa.errors import DataFormatError

NAN = np.nan


def hand_table() -> np.ndarray:
    """Three systems, two utterances; only the upper triangle (model order k < w) is set."""
    table = np.full((3, 3, 2), NAN)
    table[0, 1] = [0.9, 0.4]
    table[0, 2] = [0.6, 0.5]
    table[1, 2] = [0.2, 0.7]
    table[1, 0] = [0.99, 0.99]  # lower triangle: ignored by Algorithm 1
    return table


def test_binary_and_non_binary_scoring_on_a_hand_table() -> None:
    # BS: (0,1): 0 wins u1, 1 wins u2; (0,2): 0 wins u1, tie 0.5 goes to 2; (1,2): 2 then 1.
    np.testing.assert_allclose(ecs_scores(hand_table(), "bs"), [2.0, 2.0, 2.0])
    # NBS: p0 = .9+.4+.6+.5, p1 = .1+.6+.2+.7, p2 = .4+.5+.8+.3
    np.testing.assert_allclose(ecs_scores(hand_table(), "nbs"), [2.4, 1.6, 2.0])
    assert ecs_scores(hand_table(), "bs").sum() == pytest.approx(6.0)  # one point per comparison
    with pytest.raises(DataFormatError, match="scoring"):
        ecs_scores(hand_table(), "majority")


def test_nan_comparisons_are_skipped_and_win_rates_are_shares() -> None:
    table = hand_table()
    table[0, 1, 1] = NAN
    np.testing.assert_allclose(ecs_scores(table, "bs"), [2.0, 1.0, 2.0])
    matrix = win_rate_matrix(table, "nbs")
    assert matrix[0, 1] == pytest.approx(0.9)
    assert matrix[2, 1] == pytest.approx((0.8 + 0.3) / 2)
    ranking = ecs_ranking(hand_table(), ["a", "b", "c"], "nbs")
    assert ranking.ranks.tolist() == [1, 3, 2]
    np.testing.assert_allclose(ranking.win_rates, ranking.scores / 4)


def test_symmetrise_averages_both_orders() -> None:
    table = np.full((2, 2, 1), NAN)
    table[0, 1, 0], table[1, 0, 0] = 0.8, 0.4
    result = symmetrise(table)
    assert result[0, 1, 0] == pytest.approx((0.8 + 0.6) / 2)
    assert result[1, 0, 0] == pytest.approx(1 - result[0, 1, 0])
    only_upper = symmetrise(hand_table()[:, :, :1] * np.triu(np.ones((3, 3)))[:, :, None])
    assert only_upper[2, 0, 0] == pytest.approx(0.4)


def test_ecs_over_a_scalar_predictor_counts_wins() -> None:
    scores = np.array([[3.0, 2.0, 4.0], [1.0, 2.0, 5.0], [2.0, 2.5, NAN]])
    table = scalar_probability_table(scores)
    assert table[0, 1, 0] == 1.0 and table[0, 1, 1] == 0.5 and np.isnan(table[0, 2, 2])
    # (0,1): 0 wins u0, the tie on u1 goes to 1, 1 wins u2; (0,2): 0 wins u0, 2 wins u1, u2 has
    # no score; (1,2): 2 wins u0 and u1.
    np.testing.assert_allclose(ecs_scores(table, "bs"), [2.0, 2.0, 3.0])


def test_bradley_terry_recovers_known_strengths() -> None:
    truth = np.array([1.5, 0.5, 0.0, -0.7, -1.3])
    expected = bradley_terry_probability(truth)
    games = 4000
    points = expected * games
    np.fill_diagonal(points, 0)
    np.testing.assert_allclose(
        fit_bradley_terry(points, prior=0.0), truth - truth.mean(), atol=1e-6
    )
    generator = np.random.default_rng(1)
    outcomes = (generator.random((5, 5, 400)) < expected[:, :, None]).astype(float)
    result = bradley_terry_bootstrap(outcomes, "bs", resamples=100, seed=3)
    np.testing.assert_allclose(result.strengths, truth - truth.mean(), atol=0.15)
    assert result.ranks.tolist() == [1, 2, 3, 4, 5]
    assert np.all(result.strength_low <= result.strengths)
    assert np.all(result.strengths <= result.strength_high)
    assert np.all(result.rank_low <= result.ranks) and np.all(result.ranks <= result.rank_high)
    assert np.all(result.strength_low <= truth - truth.mean() + 0.05)


def test_bradley_terry_stays_finite_for_an_unbeaten_system() -> None:
    points = np.array([[0.0, 5.0], [0.0, 0.0]])
    strengths = fit_bradley_terry(points)
    assert np.all(np.isfinite(strengths)) and strengths[0] > strengths[1]


def test_adaptive_mode_recovers_the_order_with_fewer_comparisons() -> None:
    truth = np.linspace(2.0, -2.0, 10)
    probability = bradley_terry_probability(truth)
    generator = np.random.default_rng(0)
    seen: set[tuple[int, int, int]] = set()

    def compare(requests: list[tuple[int, int, int]]) -> np.ndarray:
        assert all(first < second for first, second, _ in requests)
        assert not seen.intersection(requests)  # never repeats a comparison
        seen.update(requests)
        return np.array([float(generator.random() < probability[k, w]) for k, w, _ in requests])

    result = adaptive_ranking(compare, 10, 200, initial_utterances=4, batch_utterances=8)
    assert result.ranks.tolist() == rank_from_scores(truth).tolist()
    assert result.comparisons == len(seen) < result.full_comparisons / 4
    assert np.isfinite(result.probabilities).sum() == result.comparisons


def test_adaptive_mode_that_never_stops_equals_full_ecs() -> None:
    table = np.random.default_rng(2).random((4, 4, 6))
    result = adaptive_ranking(
        lambda requests: np.array([table[k, w, i] for k, w, i in requests]),
        4,
        6,
        initial_utterances=6,
        z_threshold=np.inf,
        patience=10**6,
    )
    assert result.comparisons == result.full_comparisons == 36
    upper = np.triu(np.ones((4, 4), dtype=bool), k=1)
    np.testing.assert_array_equal(result.probabilities[upper], table[upper])
