"""Reference-based perceptual metrics backed by installed packages: PESQ, ESTOI, MCD.

Each function takes float arrays of shape (T,) at any rate and resamples to the metric's native
rate itself. Degenerate input raises a typed :class:`sqa.errors.AudioError`; the scorer turns it
into NaN plus a reason.
"""

from __future__ import annotations

import warnings

import numpy as np

from sqa.audio import resample
from sqa.errors import SilentAudioError
from sqa.metrics.signal import align_pair

MCD_ORDER = 24
MCD_FRAME_PERIOD_MS = 5.0
MCD_SAMPLE_RATE = 16000


def pesq_score(estimate: np.ndarray, reference: np.ndarray, *, sample_rate: int) -> float:
    """PESQ via the ``pesq`` package: wideband at 16 kHz, narrowband for 8 kHz input.

    Args:
        estimate: Enhanced signal (T,).
        reference: Clean reference (T,).
        sample_rate: Rate of both signals; 8000 selects narrowband, anything else is resampled to
            16 kHz and scored wideband.

    Returns:
        MOS-LQO (about 4.64 for identical wideband signals).
    """
    import pesq

    estimate, reference = align_pair(estimate, reference, sample_rate)
    if sample_rate == 8000:
        rate, mode = 8000, "nb"
    else:
        rate, mode = 16000, "wb"
        estimate = resample(estimate, sample_rate, rate)
        reference = resample(reference, sample_rate, rate)
    try:
        return float(pesq.pesq(rate, reference, estimate, mode))
    except pesq.NoUtterancesError as error:
        raise SilentAudioError(f"PESQ found no utterances ({error})") from None


def estoi_score(estimate: np.ndarray, reference: np.ndarray, *, sample_rate: int) -> float:
    """Extended STOI via ``pystoi`` (it resamples to 10 kHz internally; deterministic).

    Args:
        estimate: Enhanced signal (T,).
        reference: Clean reference (T,).
        sample_rate: Rate of both signals.

    Returns:
        ESTOI (1 for identical signals).
    """
    from pystoi import stoi

    estimate, reference = align_pair(estimate, reference, sample_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            return float(stoi(reference, estimate, sample_rate, extended=True))
        except RuntimeWarning as warning:
            # pystoi warns and returns a tiny placeholder when fewer than 30 frames survive.
            raise SilentAudioError(f"ESTOI undefined: {warning}") from None


def _mel_cepstrum(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """WORLD spectral envelope -> mel-cepstrum (frames, MCD_ORDER + 1)."""
    with warnings.catch_warnings():
        # Both packages import the deprecated pkg_resources at import time.
        warnings.simplefilter("ignore", UserWarning)
        import pysptk
        import pyworld

    frame_period = MCD_FRAME_PERIOD_MS
    pitch, times = pyworld.dio(signal, sample_rate, frame_period=frame_period)
    pitch = pyworld.stonemask(signal, pitch, times, sample_rate)
    envelope = pyworld.cheaptrick(signal, pitch, times, sample_rate)
    alpha = pysptk.util.mcepalpha(sample_rate)
    return pysptk.sp2mc(envelope, order=MCD_ORDER, alpha=alpha)


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic time warping over a cost matrix with steps (1,0), (0,1), (1,1).

    Anti-diagonals are filled one at a time so every step is a vector operation.

    Args:
        cost: Local cost matrix (N, M).

    Returns:
        Row and column indices of the optimal path from (0, 0) to (N-1, M-1).
    """
    rows, columns = cost.shape
    total = np.full((rows + 1, columns + 1), np.inf)
    total[0, 0] = 0.0
    for diagonal in range(2, rows + columns + 1):
        row = np.arange(max(1, diagonal - columns), min(rows, diagonal - 1) + 1)
        column = diagonal - row
        best = np.minimum(
            np.minimum(total[row - 1, column], total[row, column - 1]), total[row - 1, column - 1]
        )
        total[row, column] = cost[row - 1, column - 1] + best
    path_rows, path_columns = [rows - 1], [columns - 1]
    row, column = rows, columns
    while (row, column) != (1, 1):
        steps = ((row - 1, column - 1), (row - 1, column), (row, column - 1))
        row, column = min(steps, key=lambda step: total[step])
        path_rows.append(row - 1)
        path_columns.append(column - 1)
    return np.array(path_rows[::-1]), np.array(path_columns[::-1])


def mcd_score(estimate: np.ndarray, reference: np.ndarray, *, sample_rate: int) -> float:
    """Mel-cepstral distortion in dB between DTW-aligned mel-cepstra.

    Choices (documented because MCD values are not comparable across implementations): signals are
    resampled to 16 kHz; WORLD (pyworld ``dio`` + ``stonemask`` + ``cheaptrick``, 5 ms frames)
    gives the spectral envelope; ``pysptk.sp2mc`` converts it to a mel-cepstrum of order 24 with
    the all-pass constant ``alpha = pysptk.util.mcepalpha(16000) = 0.41``; the energy term c0 is
    dropped; frames are aligned with DTW on the Euclidean distance of c1..c24; and
    ``MCD = mean over path of (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2)``.

    Args:
        estimate: Enhanced signal (T,).
        reference: Clean reference (T,).
        sample_rate: Rate of both signals.

    Returns:
        MCD in dB (0 for identical signals, lower is better).
    """
    estimate, reference = align_pair(estimate, reference, sample_rate)
    if sample_rate != MCD_SAMPLE_RATE:
        estimate = resample(estimate, sample_rate, MCD_SAMPLE_RATE).astype(np.float64)
        reference = resample(reference, sample_rate, MCD_SAMPLE_RATE).astype(np.float64)
    estimate_cepstrum = _mel_cepstrum(estimate, MCD_SAMPLE_RATE)[:, 1:]
    reference_cepstrum = _mel_cepstrum(reference, MCD_SAMPLE_RATE)[:, 1:]
    difference = estimate_cepstrum[:, None, :] - reference_cepstrum[None, :, :]
    cost = np.sqrt(np.sum(difference**2, axis=-1))
    path_rows, path_columns = dtw_path(cost)
    distances = cost[path_rows, path_columns]
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0) * distances))
