"""Transcript listings for word accuracy: Kaldi ``text`` files and ``text`` fields of tables.

- Kaldi ``text``: one ``<id> <words...>`` line per utterance (a line with only the id is an
  empty transcript).
- ``.jsonl`` (e.g. a Track-2 ``data.jsonl``) or ``.csv``: rows with a ``text`` field (or the
  column named by ``column``), keyed by their ``utterance_id`` and their ``sample_id``.

Ids are looked up by utterance first, then by sample (:func:`transcript_for`), like references.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sqa.errors import DataFormatError
from sqa.fileio import TABLE_SUFFIXES, read_rows


def _kaldi_text(path: Path) -> dict[str, str]:
    transcripts: dict[str, str] = {}
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            parts = line.strip().split(maxsplit=1)
            if not parts:
                continue
            if parts[0] in transcripts:
                raise DataFormatError(f"{path}:{number}: duplicate id {parts[0]!r}")
            transcripts[parts[0]] = parts[1] if len(parts) > 1 else ""
    return transcripts


def _add(transcripts: dict[str, str], key: str, text: str, where: str) -> None:
    if key in transcripts and transcripts[key] != text:
        raise DataFormatError(f"{where}: id {key!r} has two different transcripts")
    transcripts[key] = text


def _table_text(path: Path, column: str) -> dict[str, str]:
    rows = read_rows(path)
    if rows and not any(column in row for row in rows):
        raise DataFormatError(f"{path}: no {column!r} field in any row")
    transcripts: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        text = row.get(column)
        if text is None:
            continue
        keys = [str(row[name]) for name in ("utterance_id", "sample_id") if row.get(name)]
        if not keys:
            raise DataFormatError(f"{path}:{number}: a transcript row needs sample_id")
        for key in dict.fromkeys(keys):
            _add(transcripts, key, str(text), f"{path}:{number}")
    return transcripts


def read_transcripts(path: str | os.PathLike[str], column: str = "text") -> dict[str, str]:
    """Id -> transcript from a Kaldi ``text`` file or a CSV/JSONL table (see module doc).

    Raises:
        DataFormatError: Missing file, repeated id with another text, or no ``column`` field.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"--text {path}: no such file")
    if path.suffix.lower() in TABLE_SUFFIXES:
        return _table_text(path, column)
    return _kaldi_text(path)


def transcript_for(
    transcripts: Mapping[str, str], utterance_id: str | None, sample_id: str
) -> str | None:
    """The transcript of a file (by utterance id, then sample id), or ``None``."""
    for key in (utterance_id, sample_id):
        if key is not None and key in transcripts:
            return transcripts[key]
    return None
