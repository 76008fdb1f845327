"""``sqa.agreement`` statistics and the ``sqa agreement`` command on tiny synthetic tables."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from sqa.agreement import agreement, pairwise_accuracy, system_kendall
from sqa.cli import main as sqa_main
from sqa.commands.agreement import parse_score_spec
from sqa.fileio import read_rows

SYSTEMS = ("A", "B", "C", "D")
QUALITY = {"A": 80.0, "B": 60.0, "C": 40.0, "D": 20.0}


def synthetic_items(groups: int = 5) -> tuple[np.ndarray, list[str], list[str]]:
    """Human values (N,), groups (N,) and systems (N,): system order is the same in every group."""
    human = [QUALITY[s] + 3.0 * g for g in range(groups) for s in SYSTEMS]
    group_ids = [f"utt{g}" for g in range(groups) for _ in SYSTEMS]
    return np.asarray(human), group_ids, [s for _ in range(groups) for s in SYSTEMS]


def test_perfect_and_reversed_predictors() -> None:
    human, groups, systems = synthetic_items()
    perfect = agreement(human, 0.01 * human + 1.0, groups, systems, resamples=50)
    assert perfect.pairwise_accuracy == 1.0 and perfect.pairs == 5 * 6
    assert perfect.srcc == pytest.approx(1.0) and perfect.ktau == pytest.approx(1.0)
    assert perfect.pairwise_ci == (1.0, 1.0)
    reverse = agreement(human, -human, groups, systems, resamples=50)
    assert reverse.pairwise_accuracy == 0.0
    assert reverse.srcc == pytest.approx(-1.0) and reverse.ktau == pytest.approx(-1.0)
    assert set(perfect.system_means) == set(SYSTEMS) and perfect.system_means["A"]["items"] == 5


def test_ties_count_half_and_equal_human_pairs_are_skipped() -> None:
    human, groups, _ = synthetic_items(3)
    assert pairwise_accuracy(human, np.zeros_like(human), groups) == (0.5, 18)
    # One group: humans tie on the last two items, so only two pairs count.
    assert pairwise_accuracy([1.0, 2.0, 2.0], [0.0, 1.0, -5.0], ["g"] * 3) == (0.5, 2)
    assert pairwise_accuracy([3.0, 3.0], [1.0, 2.0], ["g", "g"]) == (
        pytest.approx(math.nan, nan_ok=True),
        0,
    )
    # Pairs never cross groups.
    assert pairwise_accuracy([1.0, 2.0], [2.0, 1.0], ["a", "b"])[1] == 0


def test_hand_computed_example_matches_scipy() -> None:
    human = [1.0, 2.0, 3.0, 3.0, 2.0, 2.0]
    predicted = [1.0, 3.0, 2.0, 1.0, 1.0, 0.0]
    groups = ["a", "a", "a", "b", "b", "b"]
    systems = ["x", "y", "z", "x", "y", "z"]
    # a: (1,2) agree, (1,3) agree, (2,3) disagree; b: (x,y) predicted tie 0.5, (x,z) agree,
    # (y,z) human tie -> skipped. (1 + 1 + 0 + 0.5 + 1) / 5.
    assert pairwise_accuracy(human, predicted, groups) == (pytest.approx(0.7), 5)
    result = agreement(human, predicted, groups, systems, resamples=200, seed=3)
    assert result.srcc == pytest.approx(scipy.stats.spearmanr(predicted, human).statistic)
    human_means, predicted_means = [2.0, 2.0, 2.5], [1.0, 2.0, 1.0]
    expected = scipy.stats.kendalltau(predicted_means, human_means).statistic
    assert result.ktau == pytest.approx(expected)
    assert system_kendall(human, predicted, systems) == pytest.approx(expected)
    again = agreement(human, predicted, groups, systems, resamples=200, seed=3)
    assert again.srcc_ci == result.srcc_ci and again.pairwise_ci == result.pairwise_ci
    low, high = result.pairwise_ci
    assert 0.0 <= low <= high <= 1.0


def test_nan_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        pairwise_accuracy([1.0, 2.0], [1.0, math.nan], ["g", "g"])


def test_score_spec_parsing(tmp_path: Path) -> None:
    table = tmp_path / "a:b.csv"
    table.write_text("system_id,sample_id,x\n")
    spec = parse_score_spec(f"{table}:x:My label")
    assert (spec.path, spec.column, spec.label) == (table, "x", "My label")
    assert parse_score_spec(str(table)).column is None
    assert parse_score_spec("missing.csv:lsd").column == "lsd"


def write_ratings(path: Path, groups: int = 4) -> Path:
    human, group_ids, systems = synthetic_items(groups)
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["sample_id", "system_id", "utterance_id", "path", "mushra"])
        for value, group, system in zip(human, group_ids, systems, strict=True):
            writer.writerow([f"{group}/{system}", system, group, f"{group}/{system}.wav", value])
    return path


def write_scores(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def score_rows(ratings: Path, folder_layout: bool = False) -> list[dict]:
    """`sqa score`-style rows: a good higher-is-better score and an lsd that falls with quality."""
    rows = []
    for row in read_rows(ratings):
        value = float(row["mushra"])
        sample = row["utterance_id"] if folder_layout else row["sample_id"]
        metrics = {"dnsmos_ovrl": value / 20.0, "lsd": 10.0 - value / 10.0, "rand": 1.0}
        rows.append({"system_id": row["system_id"], "sample_id": sample, "metrics": metrics})
    return rows


def test_cli_round_trip_with_direction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ratings = write_ratings(tmp_path / "ratings.csv")
    scores = write_scores(tmp_path / "scores.jsonl", score_rows(ratings))
    output = tmp_path / "agreement.json"
    specs = [f"{scores}:dnsmos_ovrl", f"{scores}:lsd:LSD", f"{scores}:rand"]
    command = ["agreement", "--human", str(ratings), "--scores", *specs, "--resamples", "50"]
    assert sqa_main([*command, "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "dnsmos_ovrl" in printed and "LSD" in printed and "16/16" in printed
    document = json.loads(output.read_text())
    ovrl, lsd, constant = document["scorers"]
    assert lsd["direction"] == "lower (negated)" and ovrl["direction"] == "higher"
    for row in (ovrl, lsd):
        assert row["pairwise_accuracy"] == 1.0 and row["pairs"] == 24
        assert row["srcc"] == pytest.approx(1.0) and row["ktau"] == pytest.approx(1.0)
    assert constant["pairwise_accuracy"] == 0.5 and constant["srcc"] is None  # NaN -> null
    assert lsd["system_means"]["A"]["human"] == pytest.approx(84.5)
    assert sqa_main([*command, "--output", str(output)]) == 2
    assert "exists" in capsys.readouterr().err
    flat = tmp_path / "agreement.csv"
    assert sqa_main([*command, "--output", str(flat), "--seed", "1"]) == 0
    rows = read_rows(flat)
    assert [row["label"] for row in rows] == ["dnsmos_ovrl", "LSD", "rand"]
    assert float(rows[1]["ktau_ci_low"]) <= 1.0
    repeated = ["agreement", "--human", str(ratings), "--resamples", "50", "--force"]
    for spec in specs:  # one --scores per table adds up like one --scores with several
        repeated += ["--scores", spec]
    assert sqa_main([*repeated, "--output", str(flat)]) == 0
    assert [row["label"] for row in read_rows(flat)] == ["dnsmos_ovrl", "LSD", "rand"]


def test_folder_layout_join_and_missing_predictions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ratings = write_ratings(tmp_path / "ratings.csv")
    rows = score_rows(ratings, folder_layout=True)  # sample_id = utterance stem, as for folders
    rows[0]["metrics"]["dnsmos_ovrl"] = float("nan")
    del rows[1]
    scores = write_scores(tmp_path / "scores.jsonl", rows)
    command = ["agreement", "--human", str(ratings), "--scores", f"{scores}:dnsmos_ovrl"]
    output = tmp_path / "out.jsonl"
    assert sqa_main([*command, "--resamples", "20", "--output", str(output)]) == 0
    captured = capsys.readouterr()
    assert "1 of 16 rated items have no score row and 1 a NaN score" in captured.err
    (row,) = read_rows(output)
    assert (row["matched"], row["absent"], row["nan"], row["items"]) == (15, 1, 1, 14)
    assert row["pairwise_accuracy"] == 1.0


def test_no_matching_row_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ratings = write_ratings(tmp_path / "ratings.csv")
    rows = [{"system_id": "other", "sample_id": "x", "metrics": {"dnsmos_ovrl": 1.0}}]
    scores = write_scores(tmp_path / "scores.jsonl", rows)
    output = tmp_path / "out.json"
    command = ["agreement", "--human", str(ratings), "--scores", str(scores)]
    assert sqa_main([*command, "--output", str(output)]) == 2
    error = capsys.readouterr().err.strip()
    assert "no row matches the human table" in error and len(error.splitlines()) == 1
    assert not output.exists()
