"""Atomic outputs, overwrite protection and CSV/JSONL tables."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest

from sqa.errors import DataFormatError, SqaError
from sqa.fileio import atomic_open, read_rows, write_rows

ROWS = [
    {"sample_id": "u1", "system_id": "A", "metrics": {"pesq": 3.5, "estoi": math.nan}},
    {"sample_id": "u2", "system_id": "B", "metrics": {"pesq": 1.25}},
]


def test_jsonl_writes_missing_values_as_strict_json_null(tmp_path: Path) -> None:
    rows = [*ROWS, {"sample_id": "u3", "system_id": "B", "metrics": {"sdr": math.inf}}]
    path = write_rows(tmp_path / "scores.jsonl", rows)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    for line in text.splitlines():  # a strict parser (jq, JavaScript) accepts every line
        json.loads(line, parse_constant=lambda token: pytest.fail(f"non-JSON token {token}"))
    read = read_rows(path)
    assert read[0]["metrics"] == {"pesq": 3.5, "estoi": None}
    assert read[1] == ROWS[1] and read[2]["metrics"]["sdr"] is None


def test_readers_take_null_and_legacy_nan_as_missing(tmp_path: Path) -> None:
    from sqa.data import read_track2_jsonl

    path = tmp_path / "data.jsonl"
    path.write_text(
        '{"sample_id": "a", "system_id": "s", "metrics": {"mos": null, "pesq": 2.0}}\n'
        '{"sample_id": "b", "system_id": "s", "metrics": {"mos": NaN}}\n'
    )
    first, second = read_track2_jsonl(path)
    assert first.metrics == {"pesq": 2.0} and second.metrics == {}


def test_csv_flattens_metrics_and_leaves_missing_empty(tmp_path: Path) -> None:
    rows = read_rows(write_rows(tmp_path / "scores.csv", ROWS))
    assert list(rows[0]) == ["sample_id", "system_id", "pesq", "estoi"]
    assert rows[0]["estoi"] == "" and rows[1]["estoi"] == ""
    assert float(rows[1]["pesq"]) == 1.25


def test_refuses_overwrite_without_force(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "out.jsonl", ROWS)
    with pytest.raises(SqaError, match="--force"):
        write_rows(path, ROWS[:1])
    write_rows(path, ROWS[:1], force=True)
    assert len(read_rows(path)) == 1


def test_unknown_suffix_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SqaError, match=".csv or .jsonl"):
        write_rows(tmp_path / "out.txt", ROWS)


def test_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "result.jsonl"
    target.write_text("previous\n")
    with pytest.raises(RuntimeError), atomic_open(target) as stream:
        stream.write("half a line")
        raise RuntimeError("interrupted")
    assert target.read_text() == "previous\n"
    assert [path.name for path in tmp_path.iterdir()] == ["result.jsonl"]


def test_bad_jsonl_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\nnot json\n')
    with pytest.raises(DataFormatError, match="bad.jsonl:2"):
        read_rows(path)


def test_atomic_output_gets_the_usual_permissions(tmp_path: Path) -> None:
    # mkstemp's private 0600 mode must not leak into results other users read
    previous = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "out.txt") as stream:
            stream.write("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644
