"""Audio file lists and fixed-length segments for training and evaluation data."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from sqa.audio import load_audio
from sqa.data import describe_source, folders, load_records
from sqa.data.kaldi import read_audio_scp
from sqa.errors import AudioError, DataFormatError


def pool_files(
    source: str | os.PathLike[str] | None, *, every: int = 0, holdout: bool = False
) -> list[Path]:
    """The audio files of a pool of speech, noise or RIRs, sorted.

    A pool is named like any other audio input: a folder (every audio file under it, recursively,
    by :func:`sqa.data.folders.list_audio`), a ``*.scp`` file (``<id> <path>``), or any listing
    :func:`sqa.data.load_records` reads (Kaldi dir, ``data.jsonl``, CSV, URGENT-PK root, ...).

    Args:
        source: The pool; ``None`` or ``""`` (an unset pool) gives no files.
        every: With ``every > 0``, a deterministic split: every ``every``-th file is held out.
        holdout: Return the held-out part of that split instead of the rest.

    Raises:
        DataFormatError: A missing source, or a listing entry that is not a plain audio file
            (archives and pipes cannot be mixed from).
    """
    if not source:
        return []
    path = Path(source)
    if path.is_dir() and describe_source(path) == "folders":
        files = folders.list_audio(path, recursive=True)
    else:
        if path.is_file() and path.suffix == ".scp" and path.name != "wav.scp":
            entries = list(read_audio_scp(path).values())
        else:
            entries = [record.path for record in load_records(path)]
        files = sorted({Path(entry) for entry in entries})
        unusable = [str(file) for file in files if not file.is_file()]
        if unusable:
            raise DataFormatError(
                f"{path}: {len(unusable)} pool entries are not audio files on disk "
                f"(e.g. {unusable[0]}); pools take plain files, not archives or pipes"
            )
    if every > 0:
        files = [file for index, file in enumerate(files) if (index % every == 0) == holdout]
    return usable_pool_files(files, path)


def usable_pool_files(files: list[Path], source: Path) -> list[Path]:
    """The files that decode to valid audio; each other one is named with its reason in a warning.

    Every pool file is read once here (the commands read them all anyway), so that an empty,
    corrupt, silent or NaN file is left out with a reason instead of stopping the run midway.

    Raises:
        DataFormatError: No file of a non-empty pool is usable.
    """
    usable = []
    for file in files:
        try:
            load_audio(file)
        except AudioError as error:
            warnings.warn(f"skipping pool file {error}", stacklevel=3)
            continue
        usable.append(file)
    if files and not usable:
        raise DataFormatError(f"{source}: none of its {len(files)} pool file(s) is usable audio")
    return usable


def audio_segments(files: list[Path], rate: int, seconds: float) -> list[np.ndarray]:
    """Non-overlapping ``seconds``-long pieces of every real file (shorter files padded)."""
    length = round(seconds * rate)
    pieces = []
    for path in files:
        audio = load_audio(path, sample_rate=rate)[0]
        for start in range(0, max(1, audio.shape[0] - length + 1), length):
            piece = audio[start : start + length]
            pieces.append(np.pad(piece, (0, length - piece.shape[0])))
    return pieces
