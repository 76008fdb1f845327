"""`sqa pairs`: the unanimous multi-metric criterion on a hand-made table."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqa.commands import pairs
from sqa.errors import SqaError
from sqa.fileio import read_jsonl, write_rows

NAN = float("nan")


def _row(system: str, source: str, pesq: float, lsd: float) -> dict:
    return {
        "audio_path": f"{system}/{source}.wav",
        "system_id": system,
        "sample_id": source,
        "utterance_id": source,
        "metrics": {"pesq": pesq, "lsd": lsd},
    }


TABLE = [
    _row("A", "u1", 3.0, 1.0),  # beats B and C on both metrics (lsd: lower is better)
    _row("B", "u1", 2.0, 2.0),  # beats C on both
    _row("C", "u1", 1.0, 3.0),
    _row("A", "u2", 3.0, 3.0),  # better pesq but worse lsd than B: no pair
    _row("B", "u2", 2.0, 1.0),
    _row("C", "u2", NAN, 0.5),  # NaN: never paired
]


def _keys(found: list[dict]) -> set[tuple[str, str, str]]:
    return {(p["utterance_id"], p["chosen_system_id"], p["rejected_system_id"]) for p in found}


def test_unanimous_pairs_on_hand_made_table() -> None:
    found, report = pairs.unanimous_pairs(TABLE, ["pesq", "lsd"])
    assert _keys(found) == {("u1", "A", "B"), ("u1", "A", "C"), ("u1", "B", "C")}
    assert (report.candidates, report.unanimous, report.with_nan) == (6, 3, 2)
    first = next(
        p for p in found if p["chosen_system_id"] == "A" and p["rejected_system_id"] == "C"
    )
    assert first["metrics"] == {"pesq": 2.0, "lsd": -2.0}


def test_single_metric_and_order_of_versions() -> None:
    found, _ = pairs.unanimous_pairs(list(reversed(TABLE)), ["pesq"])
    assert ("u2", "A", "B") in _keys(found) and len(found) == 4


def test_margins_remove_small_improvements() -> None:
    margins = pairs.parse_margins("pesq=1.5", ["pesq", "lsd"])
    assert margins == {"pesq": 1.5, "lsd": 0.0}
    found, _ = pairs.unanimous_pairs(TABLE, ["pesq", "lsd"], margins)
    assert _keys(found) == {("u1", "A", "C")}
    assert pairs.parse_margins("0.5", ["pesq", "lsd"]) == {"pesq": 0.5, "lsd": 0.5}
    with pytest.raises(SqaError, match="not in --metrics"):
        pairs.parse_margins("sdr=1", ["pesq"])


def test_cli_writes_pairs_and_reports_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = write_rows(tmp_path / "scores.jsonl", TABLE)
    output = tmp_path / "pairs.jsonl"
    arguments = ["--scores", str(scores), "--metrics", "pesq,lsd", "--output", str(output)]
    assert pairs.main(arguments) == 0
    assert _keys(read_jsonl(output)) == {("u1", "A", "B"), ("u1", "A", "C"), ("u1", "B", "C")}
    assert "3 of 6 candidate pairs are unanimous" in capsys.readouterr().err
    with pytest.raises(SqaError, match="no values for sdr"):
        pairs.main([*arguments[:3], "sdr", "--output", str(tmp_path / "other.jsonl")])
