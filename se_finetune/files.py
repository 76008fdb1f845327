"""Audio file lists and fixed-length segments for training and evaluation data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sqa.audio import AUDIO_EXTENSIONS, load_audio
from sqa.errors import SqaError


def list_audio(folder: str | Path | None, *, every: int = 0, holdout: bool = False) -> list[Path]:
    """Audio files under ``folder`` (sorted); with ``every`` > 0, a deterministic split."""
    if not folder:
        return []
    root = Path(folder)
    if not root.is_dir():
        raise SqaError(f"{root}: not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if every > 0:
        files = [p for i, p in enumerate(files) if (i % every == 0) == holdout]
    return files


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
