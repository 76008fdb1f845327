"""Audio file lists and fixed-length segments for training and evaluation data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sqa.audio import load_audio
from sqa.data import folders


def list_audio(folder: str | Path | None, *, every: int = 0, holdout: bool = False) -> list[Path]:
    """Audio files anywhere under ``folder`` (:func:`sqa.data.folders.list_audio`, recursive);
    ``None`` or ``""`` (an unset pool) gives no files."""
    if not folder:
        return []
    return folders.list_audio(folder, recursive=True, every=every, holdout=holdout)


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
