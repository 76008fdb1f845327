"""Listening-test CSVs as SHEET and the official URGENT 2026 data preparation write them.

Columns (the SHEET data format): ``wav_path``, ``system_id``, ``sample_id`` and the rating, with
optionally ``listener_id`` (a string), ``listener_idx``, ``domain_idx``, ``phoneme``, ``cluster``,
``reference``. Training sets have one row per rating (``score``); SHEET's averaged test sets have
one row per file with ``avg_score``. The rating column is the first present of:

* ``score``: the ratings of each file (rows with the same ``(system_id, sample_id)``) are
  averaged into ``metrics["mos"]``, as SHEET's ``calculate_avg_score`` and the official
  ``csv2jsonl.py`` do; ``AudioRecord.listeners`` is the number of distinct ``listener_id`` values
  among them (each row counts as one listener when the id is empty or the column absent);
* ``avg_score`` or ``mos``: one value per file, read as ``metrics["mos"]``.

A column named like a metric of the registry (``utmos``, ``pesq``, ...; ``mos`` only as the
rating column) is read too; it must hold one value per file. Other columns are ignored. Relative
``wav_path`` values go through :func:`sqa.data.records.resolve_path` (the CSV's folder, then the
working directory SHEET and the official scripts open them from). Rows of one file must agree on
``wav_path``.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqa.data.records import AudioRecord, check_unique, parse_float, resolve_path
from sqa.errors import DataFormatError
from sqa.metrics.registry import METRIC_SPECS

REQUIRED_COLUMNS = ("wav_path", "system_id", "sample_id")
RATING_COLUMNS = ("score", "avg_score", "mos")


@dataclass
class _File:
    """What the rows of one file say."""

    wav_path: str
    ratings: list[float] = field(default_factory=list)
    listeners: set[str] = field(default_factory=set)
    labels: dict[str, float] = field(default_factory=dict)


def is_listening_csv(path: str | os.PathLike[str]) -> bool:
    """Whether a CSV's header has ``wav_path`` (and no ``path``, which is the suite's table)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            header = next(csv.reader(stream), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    names = {name.strip() for name in header}
    return "wav_path" in names and "path" not in names


def _columns(header: list[str], source: Path) -> tuple[str, list[str]]:
    """The rating column and the metric columns read per file."""
    absent = [column for column in REQUIRED_COLUMNS if column not in header]
    if absent:
        raise DataFormatError(f"{source}: missing column(s) {', '.join(absent)}")
    if len(set(header)) != len(header):
        raise DataFormatError(f"{source}: repeated column names in the header")
    rating = next((column for column in RATING_COLUMNS if column in header), None)
    if rating is None:
        expected = ", ".join(RATING_COLUMNS)
        raise DataFormatError(f"{source}: needs a rating column, one of {expected}")
    labels = [c for c in header if c in METRIC_SPECS and c not in RATING_COLUMNS]
    return rating, labels


def _set_label(item: _File, name: str, value: float, where: str) -> None:
    """Record a per-file value; rows of one file that disagree are an error."""
    if math.isnan(value):
        return
    previous = item.labels.setdefault(name, value)
    if previous != value:
        raise DataFormatError(f"{where}: {name}={value} disagrees with {previous} for this file")


def _add_row(
    files: dict[tuple[str, str], _File],
    cells: dict[str, str],
    columns: tuple[str, list[str]],
    where: str,
) -> None:
    """Fold one CSV row into the record of its file."""
    values = {column: (cells.get(column) or "").strip() for column in REQUIRED_COLUMNS}
    for column, value in values.items():
        if not value:
            raise DataFormatError(f"{where}: empty {column!r}")
    key = (values["system_id"], values["sample_id"])
    item = files.setdefault(key, _File(values["wav_path"]))
    if item.wav_path != values["wav_path"]:
        raise DataFormatError(
            f"{where}: {key[0]}/{key[1]} has wav_path {values['wav_path']!r} here and "
            f"{item.wav_path!r} before"
        )
    rating, labels = columns
    value = parse_float(cells.get(rating), f"{where} column {rating!r}")
    if rating == "score" and not math.isnan(value):
        item.ratings.append(value)
        listener = (cells.get("listener_id") or "").strip()
        item.listeners.add(listener or f"#row{len(item.ratings)}")
    elif rating != "score":
        _set_label(item, "mos", value, where)
    for name in labels:
        _set_label(item, name, parse_float(cells.get(name), f"{where} column {name!r}"), where)


def _record(key: tuple[str, str], item: _File, base: Path) -> AudioRecord:
    metrics = dict(item.labels)
    if item.ratings:
        metrics["mos"] = math.fsum(item.ratings) / len(item.ratings)
    return AudioRecord(
        sample_id=key[1],
        system_id=key[0],
        path=resolve_path(item.wav_path, base),
        utterance_id=None,
        metrics=metrics,
        listeners=len(item.listeners) if item.ratings else None,
    )


def read_listening_csv(path: str | os.PathLike[str]) -> list[AudioRecord]:
    """Read a SHEET / official listening-test CSV: one record per rated file (first-seen order).

    Raises:
        DataFormatError: Missing file or columns, empty ids, non-numeric ratings, rows of one
            file with different ``wav_path`` or per-file values.
    """
    source = Path(path)
    if not source.is_file():
        raise DataFormatError(f"{source}: file does not exist")
    files: dict[tuple[str, str], _File] = {}
    with open(source, encoding="utf-8-sig", newline="") as stream:
        reader = csv.DictReader(stream)
        columns = _columns([name.strip() for name in reader.fieldnames or []], source)
        reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
        for cells in reader:
            _add_row(files, cells, columns, f"{source}:{reader.line_num}")
    records = [_record(key, item, source.parent) for key, item in files.items()]
    check_unique(records, str(source))
    return records
