"""`sqa demo` end to end on a tiny synthetic set: files written, rankings consistent."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqa import cli
from sqa.commands import demo
from sqa.fileio import read_rows


def test_demo_writes_scores_and_rankings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "demo"
    arguments = ["demo", "--output", str(output), "--utterances", "2", "--duration", "1.0"]
    assert cli.main(arguments) == 0
    scores = read_rows(output / "scores.jsonl")
    assert len(scores) == 2 * len(demo.DEMO_SYSTEMS)
    assert set(scores[0]["metrics"]) >= set(demo.DEMO_METRICS)
    ranking = read_rows(output / "ranking.csv")
    assert sorted(row["system"] for row in ranking) == sorted(demo.DEMO_SYSTEMS)
    teachers = read_rows(output / "ranking_teachers.csv")
    # Intrusive metrics cannot be fooled: the noisiest system must come last in the aggregate.
    assert teachers[-1]["system"] == min(demo.DEMO_SYSTEMS, key=demo.DEMO_SYSTEMS.get)
    assert "Kendall tau vs the true order" in capsys.readouterr().out


def test_demo_refuses_to_clobber_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("user data")
    assert cli.main(["demo", "--output", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "user data"
