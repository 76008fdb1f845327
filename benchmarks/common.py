"""Pieces shared by the benchmark scripts (run as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile

from sqa.fileio import atomic_open
from sqa.synthetic import add_noise_at_snr, speech_like


def write_degraded_corpus(
    folder: Path, files: int, duration: float, rate: int = 16000
) -> list[tuple[str, str]]:
    """Write synthetic speech-like references and noisy copies at SNRs drawn from U(-5, 25) dB.

    Returns:
        ``(degraded path, reference path)`` per clip; names are ``deg<k>.wav`` / ``ref<k>.wav``.
    """
    generator = np.random.default_rng(0)
    pairs = []
    for index in range(files):
        clean = speech_like(duration, rate, seed=index)
        noisy = add_noise_at_snr(clean, float(generator.uniform(-5, 25)), seed=10_000 + index)
        reference, degraded = folder / f"ref{index:04d}.wav", folder / f"deg{index:04d}.wav"
        soundfile.write(reference, clean, rate)
        soundfile.write(degraded, noisy, rate)
        pairs.append((str(degraded), str(reference)))
    return pairs


def emit_summary(summary: dict, output: str | None) -> None:
    """Print the JSON summary and, when ``output`` is given, write it there atomically."""
    text = json.dumps(summary, indent=2)
    print(text)
    if output:
        with atomic_open(output) as stream:
            stream.write(text + "\n")
