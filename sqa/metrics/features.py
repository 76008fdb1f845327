"""Mel spectrograms in plain numpy, numerically matching ``librosa`` for the settings we use.

DNSMOS (P.808 input) and NISQA were trained on ``librosa.feature.melspectrogram`` features. Calling
librosa itself costs seconds on first use in every process (lazy imports, numba), which dominates
short jobs and tests, so the few pieces needed are re-implemented here: centred STFT with a periodic
Hann window, Slaney-style mel filters (``htk=False``, ``norm="slaney"``) and dB conversion.
"""

from __future__ import annotations

import functools

import numpy as np

_MEL_LINEAR_STEP = 200.0 / 3  # Hz per mel below 1 kHz (Slaney scale)
_MEL_LOG_START_HZ = 1000.0
_MEL_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    mels = frequencies / _MEL_LINEAR_STEP
    start = _MEL_LOG_START_HZ / _MEL_LINEAR_STEP
    high = frequencies >= _MEL_LOG_START_HZ
    safe = np.maximum(frequencies, _MEL_LOG_START_HZ)
    return np.where(high, start + np.log(safe / _MEL_LOG_START_HZ) / _MEL_LOG_STEP, mels)


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    start = _MEL_LOG_START_HZ / _MEL_LINEAR_STEP
    linear = mels * _MEL_LINEAR_STEP
    return np.where(
        mels >= start, _MEL_LOG_START_HZ * np.exp(_MEL_LOG_STEP * (mels - start)), linear
    )


@functools.cache
def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Triangular Slaney-normalised mel filters, float32 (n_mels, n_fft // 2 + 1)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    bin_frequencies = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bin_frequencies[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def stft_magnitude(
    signal: np.ndarray,
    n_fft: int,
    hop: int,
    window_length: int | None = None,
    pad_mode: str = "constant",
) -> np.ndarray:
    """|STFT| of a centred, padded signal with a periodic Hann window, (n_fft // 2 + 1, frames)."""
    window_length = window_length or n_fft
    window = np.zeros(n_fft)
    offset = (n_fft - window_length) // 2
    window[offset : offset + window_length] = 0.5 - 0.5 * np.cos(
        2 * np.pi * np.arange(window_length) / window_length
    )
    padded = np.pad(np.asarray(signal, dtype=np.float32), n_fft // 2, mode=pad_mode)
    count = 1 + (padded.size - n_fft) // hop
    starts = hop * np.arange(count)
    frames = padded[starts[:, None] + np.arange(n_fft)[None, :]] * window.astype(np.float32)
    return np.abs(np.fft.rfft(frames, axis=-1)).T


def mel_spectrogram(
    signal: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int,
    hop: int,
    n_mels: int,
    window_length: int | None = None,
    power: float = 2.0,
    fmax: float | None = None,
    pad_mode: str = "constant",
) -> np.ndarray:
    """Mel spectrogram (n_mels, frames) like ``librosa.feature.melspectrogram``."""
    magnitude = stft_magnitude(signal, n_fft, hop, window_length, pad_mode) ** power
    return mel_filterbank(sample_rate, n_fft, n_mels, 0.0, fmax) @ magnitude


def power_to_db(
    power: np.ndarray, reference: float, minimum: float = 1e-10, top_db: float = 80.0
) -> np.ndarray:
    """``10 log10(power / reference)`` with a floor and a dynamic-range limit (like librosa)."""
    decibels = 10.0 * np.log10(np.maximum(minimum, power))
    decibels -= 10.0 * np.log10(max(minimum, reference))
    return np.maximum(decibels, decibels.max() - top_db)
