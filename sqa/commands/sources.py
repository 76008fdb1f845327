"""One vocabulary for the audio a subcommand reads, and the flags every subcommand shares.

Every subcommand that reads audio (``score``, ``predict``, ``rank``) takes the same inputs:

* ``--dir DIR``: a folder of audio files (one system named after the folder) or, when it holds
  only folders, a root of system folders;
* ``--systems DIR...``: system folders (a single root is read as its system folders);
* ``--root DIR``: a root of system folders (``_reference`` skipped), or any listing below;
* ``--scp FILE``: a ``wav.scp``-style file (``<id> <path>``; ``utt2sys`` beside a ``wav.scp``
  names the systems);
* ``--data LISTING``: a Track-2 ``data.jsonl``, a CSV table, a SHEET CSV, a Kaldi dir, an URGENT-PK
  root or VERSA results (anything :func:`sqa.data.load_records` reads).

:func:`records_from_arguments` turns them into :class:`sqa.data.AudioRecord` lists (every file;
``sqa rank`` then keeps the utterances present in every system).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqa.commands.options import deprecated_alias
from sqa.data.records import AudioRecord
from sqa.errors import DataFormatError

SOURCE_OPTIONS = ("dir", "systems", "root", "scp", "data")


def add_source_arguments(parser: argparse.ArgumentParser) -> Any:
    """Add the mutually exclusive input flags of every audio-reading subcommand (required).

    Returns:
        The argparse group, for a command that adds an input of its own to it.
    """
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--dir", metavar="DIR", help="a folder of audio files, or a folder of system folders"
    )
    group.add_argument(
        "--systems", nargs="+", metavar="DIR", help="system folders (or one root of them)"
    )
    group.add_argument(
        "--root", metavar="DIR", help="root of system folders (_reference skipped) or a listing"
    )
    group.add_argument("--scp", metavar="FILE", help="wav.scp-style '<id> <path>' file")
    group.add_argument(
        "--data",
        metavar="LISTING",
        help="data.jsonl, CSV, Kaldi dir, URGENT-PK root, SHEET CSV or VERSA results",
    )
    return group


def add_run_arguments(parser: argparse.ArgumentParser, *, device: bool = True) -> None:
    """``--force``, ``--no-progress`` (alias ``--quiet``) and ``--device``, with help text."""
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument(
        "--quiet",
        dest="no_progress",
        nargs=0,
        action=deprecated_alias("--quiet", "--no-progress"),
        help=argparse.SUPPRESS,
    )
    if device:
        parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1")


def _folder_records(folder: Path, exclude: Sequence[str | Path]) -> list[AudioRecord]:
    """Every file of one system folder, or of every system folder of a root."""
    from sqa.data.folders import discover_systems, list_audio

    files = list_audio(folder)
    if files:
        return _system_records(folder.resolve().name, files)
    systems = discover_systems(folder, exclude=exclude, skip_references=True)
    return [
        record
        for name, system in systems.items()
        for record in _system_records(name, list_audio(system))
    ]


def _system_records(system: str, files: Sequence[Path]) -> list[AudioRecord]:
    """One record per file stem (``a.wav`` + ``a.flac``: the first by extension order, warned)."""
    from sqa.data.folders import files_by_stem

    return [
        AudioRecord(stem, system, str(path), utterance_id=stem)
        for stem, path in files_by_stem(system, files).items()
    ]


def _scp_records(scp: Path) -> list[AudioRecord]:
    from sqa.data import read_kaldi_dir
    from sqa.data.kaldi import read_audio_scp

    if not scp.is_file():
        raise DataFormatError(f"{scp}: no such file")
    if scp.name == "wav.scp":
        return read_kaldi_dir(scp.parent)
    return [
        AudioRecord(key, scp.stem, path, utterance_id=key)
        for key, path in read_audio_scp(scp).items()
    ]


def records_from_arguments(
    arguments: argparse.Namespace, *, exclude: Sequence[str | Path] = ()
) -> list[AudioRecord]:
    """The records named by the source flags of :func:`add_source_arguments`.

    Args:
        arguments: Parsed arguments with the source flags.
        exclude: Folders that are not systems even inside a root (``--ref-dir``).

    Raises:
        DataFormatError: Missing folders or files, or a source that lists no audio.
    """
    from sqa.data import describe_source, load_records, systems_from_paths
    from sqa.data.folders import list_audio

    if arguments.dir:
        records = _folder_records(_folder(arguments.dir), exclude)
    elif arguments.systems:
        folders = [_folder(item) for item in arguments.systems]
        if len(folders) == 1:  # one system folder, or one root of them
            records = _folder_records(folders[0], exclude)
        else:
            systems = systems_from_paths(folders)
            records = [
                r for name, f in systems.items() for r in _system_records(name, list_audio(f))
            ]
    elif arguments.root:
        listing = describe_source(arguments.root) != "folders"
        root = Path(arguments.root)
        records = load_records(root) if listing else _folder_records(_folder(root), exclude)
    elif arguments.scp:
        records = _scp_records(Path(arguments.scp))
    else:
        records = load_records(arguments.data)
    if not records:
        raise DataFormatError("no audio files in the input")
    return records


def _folder(item: str | Path) -> Path:
    folder = Path(item)
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: no such folder")
    return folder
