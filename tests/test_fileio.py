"""Atomic outputs, overwrite protection and CSV/JSONL tables."""

from __future__ import annotations

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


def test_jsonl_round_trip_keeps_nan(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "scores.jsonl", ROWS)
    rows = read_rows(path)
    assert rows[0]["metrics"]["pesq"] == 3.5
    assert math.isnan(rows[0]["metrics"]["estoi"])
    assert rows[1] == ROWS[1]


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
