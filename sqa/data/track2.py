"""URGENT 2026 Track-2 ``data.jsonl``.

One JSON object per line::

    {"audio_path": "...", "system_id": "...", "sample_id": "...", "duration": 3.2,
     "metrics": {"mos": 3.5, "utmos": 3.1}}

``duration`` and ``metrics`` are optional (a test list has no labels), and so is ``audio_path`` (the
official evaluator's references are ``{"sample_id", "system_id", "metrics"}``); a metric absent from
``metrics`` (or ``null``/NaN) is a missing label, read as NaN by
:func:`sqa.data.records.metric_matrix`. Other keys (e.g. ``sr``) are ignored; this suite adds an
optional ``utterance_id``. Relative ``audio_path`` values are resolved by
:func:`sqa.data.records.resolve_path` (the jsonl's folder, then the working directory). A repeated
``(system_id, sample_id)`` is a :class:`sqa.errors.DataFormatError`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqa.data.archives import MAX_MEMBER_BYTES, quote, read_text_members
from sqa.data.records import (
    AudioRecord,
    check_unique,
    clean_metrics,
    listed_path,
    parse_float,
    resolve_path,
)
from sqa.errors import DataFormatError
from sqa.fileio import write_rows

# ``audio_path`` is optional: the official evaluator's references carry only ids and labels.
REQUIRED_KEYS = ("system_id", "sample_id")


def record_from_row(row: Mapping[str, Any], where: str, base: Path) -> AudioRecord:
    """Build a record from one decoded Track-2 line.

    Args:
        row: The decoded JSON object.
        where: ``file:line`` for error messages.
        base: Folder that relative ``audio_path`` values are resolved against.
    """
    if not isinstance(row, Mapping):
        raise DataFormatError(f"{where}: expected a JSON object")
    absent = [key for key in REQUIRED_KEYS if key not in row]
    if absent:
        raise DataFormatError(f"{where}: missing key(s) {', '.join(absent)}")
    metrics = row.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise DataFormatError(f"{where}: 'metrics' must be a JSON object")
    duration = parse_float(row.get("duration"), f"{where} duration")
    utterance = row.get("utterance_id")
    return AudioRecord(
        sample_id=str(row["sample_id"]),
        system_id=str(row["system_id"]),
        path=resolve_path(str(row["audio_path"]), base) if row.get("audio_path") else "",
        utterance_id=None if utterance is None else str(utterance),
        duration=None if math.isnan(duration) else duration,
        metrics=clean_metrics(dict(metrics), where),
        listeners=int(row["listeners"]) if row.get("listeners") is not None else None,
    )


def read_track2_jsonl(path: str | os.PathLike[str]) -> list[AudioRecord]:
    """Read a Track-2 ``data.jsonl`` into records (file order).

    Raises:
        DataFormatError: Invalid JSON, missing keys, non-numeric metrics or duplicate keys.
    """
    source = Path(path)
    if not source.is_file():
        raise DataFormatError(f"{source}: file does not exist")
    records = []
    with open(source, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataFormatError(f"{source}:{number}: not valid JSON ({error.msg})") from None
            records.append(record_from_row(row, f"{source}:{number}", source.parent))
    check_unique(records, str(source))
    return records


def record_to_row(record: AudioRecord, listing_folder: Path | None = None) -> dict[str, Any]:
    """The Track-2 JSON object of a record (NaN metrics and unknown fields left out).

    Args:
        record: The record.
        listing_folder: Folder of the file the row goes into; paths are written so that they
            resolve from there (:func:`sqa.data.records.listed_path`). ``None`` keeps the path.
    """
    row: dict[str, Any] = {}
    if record.path:  # label-only records (references without audio) get no audio_path
        row["audio_path"] = (
            record.path if listing_folder is None else listed_path(record.path, listing_folder)
        )
    row["system_id"] = record.system_id
    row["sample_id"] = record.sample_id
    if record.duration is not None:
        row["duration"] = float(record.duration)
    if record.utterance_id is not None:
        row["utterance_id"] = record.utterance_id
    if record.listeners is not None:
        row["listeners"] = int(record.listeners)
    row["metrics"] = {
        name: float(value) for name, value in record.metrics.items() if not math.isnan(value)
    }
    return row


def write_track2_jsonl(
    path: str | os.PathLike[str], records: Iterable[AudioRecord], *, force: bool = False
) -> Path:
    """Write records as a Track-2 ``data.jsonl`` (atomically).

    Args:
        path: Destination ending in ``.jsonl``.
        records: Records with unique ``(system_id, sample_id)`` keys.
        force: Overwrite an existing file.

    Raises:
        DataFormatError: Duplicate keys or a destination not ending in ``.jsonl``.
        SqaError: The file exists and ``force`` is false.
    """
    items = list(records)
    destination = Path(path)
    if destination.suffix.lower() != ".jsonl":
        raise DataFormatError(f"{destination}: a Track-2 data file must end in .jsonl")
    check_unique(items, str(destination))
    return write_rows(
        destination, [record_to_row(record, destination.parent) for record in items], force=force
    )


# Submission files: a zip whose root holds ``mos.scp`` (``<sample_id> <score>`` per line).
SCORES_NAME = "mos.scp"


def expected_sample_ids(records: Sequence[AudioRecord]) -> list[str]:
    """Sample ids of a dataset, which must be unique for ``mos.scp``."""
    ids = [record.sample_id for record in records]
    if len(set(ids)) != len(ids):
        raise DataFormatError(
            "the dataset repeats sample ids across systems; mos.scp needs unique ids"
        )
    return ids


def parse_scores(text: str, source: str = SCORES_NAME) -> tuple[dict[str, float], list[str]]:
    """Parse ``mos.scp`` text; returns the scores and the problems found.

    Repeated ids and NaN/infinite scores are problems; text quoted from the file is cut short
    (:func:`sqa.data.archives.quote`), so a hostile line cannot make a huge error message.
    """
    scores: dict[str, float] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            problems.append(f"{source}:{number}: expected '<sample_id> <score>'")
            continue
        identifier, value_text = parts
        try:
            value = float(value_text)
        except ValueError:
            problems.append(f"{source}:{number}: score {quote(value_text)} is not a number")
            continue
        if identifier in scores:
            problems.append(f"{source}:{number}: duplicate id {quote(identifier)}")
        if not math.isfinite(value):
            problems.append(f"{source}:{number}: score of {quote(identifier)} is not finite")
        scores[identifier] = value
    return scores, problems


def summarise_problems(problems: Sequence[str], shown: int = 5) -> str:
    """The first ``shown`` problems joined by ``; `` and how many more there are (one line)."""
    unique = list(dict.fromkeys(problems))
    text = "; ".join(unique[:shown])
    return text + (f"; and {len(unique) - shown} more" if len(unique) > shown else "")


def format_scores(scores: Mapping[str, float]) -> str:
    """``mos.scp`` text: ``<sample_id> <score>`` with six decimals, in the given order."""
    return "".join(f"{identifier} {value:.6f}\n" for identifier, value in scores.items())


def read_scores_file(path: str | os.PathLike[str]) -> tuple[dict[str, float], list[str]]:
    """Scores and problems of a ``mos.scp`` file or of the ``mos.scp`` inside a submission zip.

    A zip is read by :func:`sqa.data.archives.read_text_members` (sizes, names and duplicates
    checked before anything is inflated); a plain file larger than the same limit is refused.
    """
    source = Path(path)
    if source.suffix.lower() == ".zip":
        texts, problems = read_text_members(source, [SCORES_NAME])
        if SCORES_NAME not in texts:
            return {}, problems
        scores, found = parse_scores(texts[SCORES_NAME], f"{source}:{SCORES_NAME}")
        return scores, problems + found
    return parse_scores(read_scores_text(source), str(source))


def read_scores_text(source: Path) -> str:
    """A plain ``mos.scp`` as text, refusing one larger than any real score list.

    Raises:
        DataFormatError: A missing, huge or non-UTF-8 file.
    """
    try:
        if source.stat().st_size > MAX_MEMBER_BYTES:
            raise DataFormatError(
                f"{source} is {source.stat().st_size} bytes (at most {MAX_MEMBER_BYTES} are read)"
            )
        return source.read_text(encoding="utf-8")
    except OSError as error:
        raise DataFormatError(f"{source}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise DataFormatError(f"{source} is not UTF-8 text") from None
