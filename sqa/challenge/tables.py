"""Per-file score tables of several systems -> per-system means (optionally per distortion type).

Any number of tables is read (``sqa score`` outputs: JSONL, CSV or Kaldi dirs; or any CSV/JSONL
with ``system_id``, e.g. externally computed ``wacc`` columns, or one row per system). Rows with
the same ``(system_id, sample_id)`` in several tables are merged, so metrics computed in separate
runs combine; the same metric with two different values is an error. In CSV/JSONL, numeric
columns are metrics and text columns (e.g. a distortion type) are kept as fields.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sqa.errors import DataFormatError
from sqa.fileio import TABLE_SUFFIXES, read_rows

KEY_FIELDS = ("system_id", "sample_id", "utterance_id", "audio_path", "path", "duration")
TYPE_COLUMNS = ("distortion_type", "distortion", "type")
PARAMETER_COLUMN = "parameters"
ALL_TYPES = "all"


@dataclass
class FileRow:
    """One file of one system: metric values (NaN = failed) and text fields."""

    system_id: str
    sample_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


def _number(value: object) -> float | None:
    """The float of a cell, NaN for an empty/missing spelling, ``None`` for text."""
    if value is None or isinstance(value, bool):
        return math.nan if value is None else None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if text.lower() in ("", "nan", "none", "null"):
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def _row(cells: dict[str, object], where: str) -> FileRow:
    system = cells.get("system_id", cells.get("system"))
    if system in (None, ""):
        raise DataFormatError(f"{where}: no system_id")
    sample = cells.get("sample_id") or cells.get("utterance_id") or "*"
    row = FileRow(str(system), str(sample))
    nested = cells.get("metrics")
    flat = {**cells, **(nested if isinstance(nested, dict) else {})}
    for name, value in flat.items():
        if name in KEY_FIELDS or name in ("system", "metrics", "errors"):
            continue
        number = _number(value)
        if number is None:
            row.fields[name] = str(value)
        else:
            row.metrics[name] = number
    return row


def _read_one(path: Path) -> list[FileRow]:
    if not path.exists():
        raise DataFormatError(f"--scores {path}: no such file or folder")
    if path.suffix.lower() in TABLE_SUFFIXES:
        return [_row(cells, f"{path}:{n}") for n, cells in enumerate(read_rows(path), start=2)]
    from sqa.metrics.outputs import read_scores

    return [
        FileRow(str(row["system_id"]), str(row["sample_id"]), dict(row["metrics"]))
        for row in read_scores(path)
    ]


def _merge(target: FileRow, extra: FileRow, where: Path) -> None:
    for name, value in extra.metrics.items():
        known = target.metrics.get(name)
        if known is not None and not (math.isnan(known) or math.isnan(value)) and known != value:
            raise DataFormatError(
                f"{where}: {target.system_id}/{target.sample_id} has {name}={value}, "
                f"another table {known}"
            )
        if known is None or math.isnan(known):
            target.metrics[name] = value
    target.fields.update(extra.fields)


def read_tables(paths: Iterable[str | os.PathLike[str]]) -> list[FileRow]:
    """Rows of all tables, merged on ``(system_id, sample_id)``.

    Raises:
        DataFormatError: A missing table, a row without ``system_id``, no rows at all, or one
            metric with two different values for the same file.
    """
    merged: dict[tuple[str, str], FileRow] = {}
    for path in map(Path, paths):
        for row in _read_one(path):
            key = (row.system_id, row.sample_id)
            if key in merged:
                _merge(merged[key], row, path)
            else:
                merged[key] = row
    if not merged:
        raise DataFormatError("the score tables hold no rows")
    return list(merged.values())


def metric_columns(rows: Sequence[FileRow]) -> list[str]:
    """Every metric column of the rows, in first-seen order."""
    return list(dict.fromkeys(name for row in rows for name in row.metrics))


def type_column(rows: Sequence[FileRow], requested: str | None) -> str | None:
    """The distortion-type column: ``requested``, else the first of :data:`TYPE_COLUMNS` found."""
    present = set(name for row in rows for name in row.fields)
    if requested is not None:
        if requested not in present:
            raise DataFormatError(f"--type-column {requested!r}: no such text column")
        return requested
    return next((name for name in TYPE_COLUMNS if name in present), None)


@dataclass(frozen=True)
class SystemMeans:
    """Per-system means of one group of files.

    Attributes:
        means: system -> metric -> mean over files with a finite value (NaN: none).
        files: system -> number of files.
        failed: system -> metric -> files without a finite value (left out of the mean).
    """

    means: dict[str, dict[str, float]]
    files: dict[str, int]
    failed: dict[str, dict[str, int]]


def system_means(rows: Sequence[FileRow], metrics: Sequence[str]) -> SystemMeans:
    """Mean of every metric per system, NaN values left out (systems in first-seen order)."""
    grouped: dict[str, list[FileRow]] = {}
    for row in rows:
        grouped.setdefault(row.system_id, []).append(row)
    means, files, failed = {}, {}, {}
    for system, members in grouped.items():
        table = np.array(
            [[row.metrics.get(name, math.nan) for name in metrics] for row in members], dtype=float
        ).reshape(len(members), len(metrics))
        finite = np.isfinite(table)
        counts = finite.sum(axis=0)
        sums = np.where(finite, table, 0.0).sum(axis=0)
        means[system] = {
            name: float(sums[index] / counts[index]) if counts[index] else math.nan
            for index, name in enumerate(metrics)
        }
        files[system] = len(members)
        failed[system] = {
            name: int(len(members) - counts[index])
            for index, name in enumerate(metrics)
            if counts[index] < len(members)
        }
    return SystemMeans(means, files, failed)


def means_by_type(
    rows: Sequence[FileRow], metrics: Sequence[str], column: str | None
) -> dict[str, SystemMeans]:
    """``{"all": means of every file}`` plus one entry per value of the type column."""
    result = {ALL_TYPES: system_means(rows, metrics)}
    if column is None:
        return result
    values = dict.fromkeys(row.fields.get(column, "") for row in rows)
    for value in values:
        if value:
            result[value] = system_means(
                [r for r in rows if r.fields.get(column) == value], metrics
            )
    return result
