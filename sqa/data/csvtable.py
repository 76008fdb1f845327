"""CSV tables: ``sample_id, system_id, path, [utterance_id], [duration], <metric columns>``.

Every column other than the fixed ones is a metric; an empty cell (or ``nan``/``NA``) is a
missing value. Relative paths are resolved against the CSV's folder. A repeated
``(system_id, sample_id)`` is a :class:`sqa.errors.DataFormatError`.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqa.data.records import AudioRecord, check_unique, listed_path, parse_float, resolve_path
from sqa.errors import DataFormatError
from sqa.fileio import atomic_open, check_writable, write_rows

REQUIRED_COLUMNS = ("sample_id", "system_id", "path")
OPTIONAL_COLUMNS = ("utterance_id", "duration")
RESERVED_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS


def _record_from_cells(
    cells: dict[str, str], metrics: list[str], where: str, base: Path
) -> AudioRecord:
    for column in REQUIRED_COLUMNS:
        if not (cells.get(column) or "").strip():
            raise DataFormatError(f"{where}: empty {column!r}")
    duration = parse_float(cells.get("duration"), f"{where} duration")
    values = {name: parse_float(cells.get(name), f"{where} column {name!r}") for name in metrics}
    utterance = (cells.get("utterance_id") or "").strip()
    return AudioRecord(
        sample_id=cells["sample_id"].strip(),
        system_id=cells["system_id"].strip(),
        path=resolve_path(cells["path"].strip(), base),
        utterance_id=utterance or None,
        duration=None if math.isnan(duration) else duration,
        metrics={name: value for name, value in values.items() if not math.isnan(value)},
    )


def read_csv_table(path: str | os.PathLike[str]) -> list[AudioRecord]:
    """Read a CSV table into records (file order).

    Raises:
        DataFormatError: Missing file or required column, empty ids, non-numeric metric cells
            or duplicate keys.
    """
    source = Path(path)
    if not source.is_file():
        raise DataFormatError(f"{source}: file does not exist")
    with open(source, encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        header = list(reader.fieldnames or [])
        absent = [column for column in REQUIRED_COLUMNS if column not in header]
        if absent:
            raise DataFormatError(f"{source}: missing column(s) {', '.join(absent)}")
        if len(set(header)) != len(header):
            raise DataFormatError(f"{source}: repeated column names in the header")
        metrics = [column for column in header if column not in RESERVED_COLUMNS]
        records = [
            _record_from_cells(cells, metrics, f"{source}:{reader.line_num}", source.parent)
            for cells in reader
        ]
    check_unique(records, str(source))
    return records


def _row(record: AudioRecord, listing_folder: Path) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sample_id": record.sample_id,
        "system_id": record.system_id,
        "path": listed_path(record.path, listing_folder),
        "utterance_id": record.utterance_id,
        "duration": record.duration,
    }
    for name, value in record.metrics.items():
        if name in RESERVED_COLUMNS or name == "metrics":
            raise DataFormatError(f"metric name {name!r} clashes with a fixed CSV column")
        row[name] = float(value)
    return row


def write_csv_table(
    path: str | os.PathLike[str], records: Iterable[AudioRecord], *, force: bool = False
) -> Path:
    """Write records as a CSV table (atomically; missing metrics as empty cells).

    Raises:
        DataFormatError: Duplicate keys, a metric named like a fixed column, or a path not
            ending in ``.csv``.
        SqaError: The file exists and ``force`` is false.
    """
    items = list(records)
    destination = Path(path)
    if destination.suffix.lower() != ".csv":
        raise DataFormatError(f"{destination}: a CSV table must end in .csv")
    check_unique(items, str(destination))
    rows = [_row(record, destination.parent) for record in items]
    if not rows:
        with atomic_open(check_writable(destination, force)) as stream:
            stream.write(",".join(RESERVED_COLUMNS) + "\n")
        return destination
    # A shared header order: fixed columns first, then metrics in first-seen order.
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    rows = [{column: row.get(column, math.nan) for column in columns} for row in rows]
    return write_rows(destination, rows, force=force)
