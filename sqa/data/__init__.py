"""Data formats: every reader returns ``list[AudioRecord]``; every format has a writer.

* folder per system ``root/<system>/<utt>.wav``: :func:`discover_systems` or
  :func:`systems_from_paths`, then :func:`match_homologous`; writer :func:`write_system_folders`.
* Kaldi dir (``wav.scp``, ``utt2sys``, ``utt2dur``, ``<metric>.scp``, ``metric.scp``):
  :func:`read_kaldi_dir` / :func:`write_kaldi_dir`.
* URGENT 2026 Track-2 ``data.jsonl``: :func:`read_track2_jsonl` / :func:`write_track2_jsonl`.
* URGENT-PK root (``<team>/wav.scp``, ``<team>/mos.scp``, ``split.json``):
  :func:`read_urgentpk` / :func:`write_urgentpk`.
* CSV table: :func:`read_csv_table` / :func:`write_csv_table`.
* SHEET / official listening-test CSV (``wav_path``, per-listener ``score`` rows):
  :func:`read_listening_csv` (read only; ratings averaged into ``mos``).
* VERSA result file (``{"key": ..., <metric>: ...}`` lines) joined with the ``wav.scp`` or folder
  VERSA scored: :func:`read_versa_results` (read only; names mapped by ``VERSA_NAMES``).

:func:`load_records` picks the reader from what ``source`` is.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqa.data.csvtable import read_csv_table, write_csv_table
from sqa.data.folders import (
    HomologousSet,
    discover_systems,
    match_homologous,
    systems_from_paths,
    write_system_folders,
)
from sqa.data.kaldi import read_kaldi_dir, write_kaldi_dir
from sqa.data.records import (
    AudioRecord,
    check_unique,
    metric_matrix,
    metric_names,
    records_by_system,
)
from sqa.data.sheet import is_listening_csv, read_listening_csv
from sqa.data.track2 import read_track2_jsonl, write_track2_jsonl
from sqa.data.urgentpk import read_split, read_urgentpk, write_urgentpk
from sqa.data.versa import VERSA_NAMES, is_versa_results, read_versa_results
from sqa.errors import DataFormatError

__all__ = [
    "VERSA_NAMES",
    "AudioRecord",
    "HomologousSet",
    "check_unique",
    "describe_source",
    "discover_systems",
    "load_records",
    "match_homologous",
    "metric_matrix",
    "metric_names",
    "read_csv_table",
    "read_kaldi_dir",
    "read_listening_csv",
    "read_split",
    "read_track2_jsonl",
    "read_urgentpk",
    "read_versa_results",
    "records_by_system",
    "systems_from_paths",
    "write_csv_table",
    "write_kaldi_dir",
    "write_system_folders",
    "write_track2_jsonl",
    "write_urgentpk",
]


def _describe_file(path: Path) -> str:
    """The format of an existing file (see :func:`describe_source`)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "sheet" if is_listening_csv(path) else "csv"
    if path.name == "wav.scp":
        return "kaldi"
    if is_versa_results(path):
        return "versa"
    if suffix == ".jsonl":
        return "track2"
    raise DataFormatError(
        f"{path}: expected a .jsonl, .csv, wav.scp or VERSA result file, or a folder"
    )


def describe_source(source: str | os.PathLike[str]) -> str:
    """Name the format of ``source``: ``"track2"``, ``"csv"``, ``"sheet"``, ``"versa"``,
    ``"kaldi"``, ``"urgentpk"`` or ``"folders"``.

    Files: a ``.csv`` with a ``wav_path`` column (and no ``path``) is a SHEET / listening-test
    CSV, any other ``.csv`` the suite's table; a file named ``wav.scp`` means its Kaldi folder; a
    file (any suffix, e.g. VERSA's ``utt_result.txt``) whose first line is an object with ``key``
    and no ``audio_path`` is VERSA results; any other ``*.jsonl`` is Track-2. Folders: one with
    ``wav.scp`` is Kaldi; one with ``split.json`` or with ``<team>/wav.scp`` sub-folders is
    URGENT-PK; one holding ``data.jsonl`` is Track-2; any other folder is the folder-per-system
    layout.

    Raises:
        DataFormatError: ``source`` does not exist or is a file of another kind.
    """
    path = Path(source)
    if path.is_file():
        return _describe_file(path)
    if not path.is_dir():
        raise DataFormatError(f"{path}: no such file or folder")
    if (path / "wav.scp").is_file():
        return "kaldi"
    if (path / "split.json").is_file() or any(path.glob("*/wav.scp")):
        return "urgentpk"
    if (path / "data.jsonl").is_file():
        return "track2"
    return "folders"


def _versa_audio(results: Path, audio: str | os.PathLike[str] | None) -> Path:
    """The listing VERSA scored: ``audio``, else a ``wav.scp`` beside the results."""
    if audio is not None:
        return Path(audio)
    if (results.parent / "wav.scp").is_file():
        return results.parent
    raise DataFormatError(
        f"{results}: VERSA results name no audio files; give the wav.scp or folder that VERSA "
        "scored (--pred) as the audio listing, or put that wav.scp beside the results"
    )


def load_records(
    source: str | os.PathLike[str],
    *,
    strict: bool = False,
    audio: str | os.PathLike[str] | None = None,
) -> list[AudioRecord]:
    """Read records from any supported format (see :func:`describe_source`).

    Args:
        source: A file or folder.
        strict: For the folder layout, make missing files and duplicate stems errors.
        audio: For VERSA results only: the ``wav.scp``, Kaldi dir or audio folder that VERSA
            scored (default: a ``wav.scp`` beside the results file).

    Returns:
        The records (for URGENT-PK, without the split: use :func:`read_urgentpk` for it).

    Raises:
        DataFormatError: An unreadable source, or ``audio`` given for a source that is not
            VERSA results.
    """
    path = Path(source)
    kind = describe_source(path)
    if audio is not None and kind != "versa":
        raise DataFormatError(f"{path}: an audio listing is only used with VERSA results")
    if kind == "versa":
        return read_versa_results(path, _versa_audio(path, audio))
    if kind == "sheet":
        return read_listening_csv(path)
    if kind == "track2":
        return read_track2_jsonl(path / "data.jsonl" if path.is_dir() else path)
    if kind == "csv":
        return read_csv_table(path)
    if kind == "kaldi":
        return read_kaldi_dir(path.parent if path.is_file() else path)
    if kind == "urgentpk":
        return read_urgentpk(path)[0]
    return match_homologous(discover_systems(path), strict=strict).records()
