"""Reference-based perceptual metrics backed by installed packages: PESQ, ESTOI, MCD.

Each function takes float arrays of shape (T,) at any rate and resamples to the metric's native
rate itself. Degenerate input raises a typed :class:`sqa.errors.AudioError`; the scorer turns it
into NaN plus a reason.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Iterator
from types import ModuleType

import numpy as np

from sqa.audio import resample
from sqa.errors import AudioError, SilentAudioError, TooLongAudioError, TooShortAudioError
from sqa.metrics.signal import align_pair

# The P.862 C code (``pesq`` package) keeps its utterances in fixed arrays of 50 and writes past
# them on long input: a segmentation fault from about 97 s of synthetic speech (120 s in the issue
# that reported it), depending on how many pauses the signal has. Its author's advice is to split
# long audio, which would change what PESQ measures (one delay search over the whole call), so
# longer pairs are refused with a reason instead; 60 s leaves a wide margin below the crash.
PESQ_MAX_SECONDS = 60.0
PESQ_MIN_SECONDS = 0.25  # the C code refuses shorter buffers
# URGENT MCD: SPTK mel-cepstrum (order, all-pass constant) per native rate, 1024/256 frames.
MCD_PARAMETERS: dict[int, tuple[int, float]] = {
    8000: (13, 0.31), 16000: (23, 0.42), 22050: (34, 0.45), 24000: (34, 0.46),
    32000: (36, 0.50), 44100: (39, 0.53), 48000: (39, 0.55),
}  # fmt: skip
MCD_FFT = 1024
MCD_HOP = 256
MCD_DTW_RADIUS = 1
MCD_GAIN_EPSILON = 1e-8
# FastDTW's window is linear in the length for similar signals (about 10 cells per frame) but can
# approach the full N x M matrix when the coarse path runs along an edge; beyond this many cells
# (one byte each, and one Python step each) the pair is refused rather than run for hours.
MCD_MAX_DTW_CELLS = 20_000_000
# Previous definition (kept as ``mcd_world_score``): WORLD envelope at 16 kHz, order 24, DTW.
MCD_WORLD_ORDER = 24
MCD_WORLD_FRAME_PERIOD_MS = 5.0
MCD_WORLD_SAMPLE_RATE = 16000
# pystoi dithers its normalisation with machine-epsilon-sized ``np.random`` noise; drawing it from
# a fixed seed makes ESTOI repeat exactly (values move by at most that noise: ~1e-13, more on
# very quiet input).
ESTOI_NOISE_SEED = 0
_GLOBAL_NUMPY_RNG = threading.Lock()
_MCD_SCALE = 10.0 / np.log(10.0) * np.sqrt(2.0)
_MOVES = ((-1, 0), (0, -1), (-1, -1))  # DTW predecessors: up, left, diagonal


def _check_pesq_duration(duration: float) -> None:
    """Refuse pairs outside what the P.862 C code handles (it would crash or refuse)."""
    if duration > PESQ_MAX_SECONDS:
        raise TooLongAudioError(
            f"PESQ is limited to {PESQ_MAX_SECONDS:g} s per file (the P.862 implementation "
            f"crashes on long input); this pair is {duration:.1f} s: score shorter excerpts"
        )
    if duration < PESQ_MIN_SECONDS:
        raise TooShortAudioError(
            f"PESQ needs at least {PESQ_MIN_SECONDS} s of audio; this pair is {duration:.3f} s"
        )


def pesq_score(estimate: np.ndarray, reference: np.ndarray, *, sample_rate: int) -> float:
    """PESQ via the ``pesq`` package: wideband at 16 kHz, narrowband for 8 kHz input.

    Args:
        estimate: Enhanced signal (T,).
        reference: Clean reference (T,).
        sample_rate: Rate of both signals; 8000 selects narrowband, anything else is resampled to
            16 kHz and scored wideband.

    Returns:
        MOS-LQO (about 4.64 for identical wideband signals).

    Raises:
        TooLongAudioError: For pairs longer than :data:`PESQ_MAX_SECONDS` (the C implementation
            crashes on long input; the scorer reports NaN with this reason).
        TooShortAudioError: For pairs shorter than 0.25 s.
        SilentAudioError: When PESQ finds no utterances.
    """
    import pesq

    estimate, reference = align_pair(estimate, reference, sample_rate)
    _check_pesq_duration(estimate.size / float(sample_rate))
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
    """Extended STOI via ``pystoi`` (it resamples to 10 kHz internally).

    Deterministic: pystoi's dithering noise comes from a fixed seed, and NumPy's global generator
    is left as it was (see :func:`_seeded_global_numpy_rng`).

    Args:
        estimate: Enhanced signal (T,).
        reference: Clean reference (T,).
        sample_rate: Rate of both signals.

    Returns:
        ESTOI (1 for identical signals).
    """
    from pystoi import stoi

    estimate, reference = align_pair(estimate, reference, sample_rate)
    with warnings.catch_warnings(), _seeded_global_numpy_rng(ESTOI_NOISE_SEED):
        warnings.simplefilter("error", RuntimeWarning)
        try:
            return float(stoi(reference, estimate, sample_rate, extended=True))
        except RuntimeWarning as warning:
            # pystoi warns and returns a tiny placeholder when fewer than 30 frames survive.
            raise SilentAudioError(f"ESTOI undefined: {warning}") from None


@contextlib.contextmanager
def _seeded_global_numpy_rng(seed: int) -> Iterator[None]:
    """Run a block with NumPy's global generator seeded, then put the caller's state back.

    pystoi draws from the global generator and offers no way to pass one; the lock keeps two
    threads of this process from interleaving their seeded blocks.
    """
    with _GLOBAL_NUMPY_RNG:
        saved = np.random.get_state()
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(saved)


def _import_sptk() -> tuple[ModuleType, ModuleType]:
    with warnings.catch_warnings():
        # Both packages import the deprecated pkg_resources at import time.
        warnings.simplefilter("ignore", UserWarning)
        import pysptk
        import pyworld
    return pysptk, pyworld


def sptk_mel_cepstra(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Frame-wise SPTK mel-cepstra as in the URGENT MCD (frames, order + 1), c0 first.

    Frames of ``MCD_FFT`` samples every ``MCD_HOP`` samples without padding (a partial last frame
    is dropped), an SPTK Hamming window (power-normalised), and ``pysptk.mcep`` with the order and
    all-pass constant of ``MCD_PARAMETERS[sample_rate]`` (``eps=1e-6`` added to the periodogram).

    Raises:
        AudioError: For a rate without SPTK parameters.
        TooShortAudioError: For fewer than ``MCD_FFT`` samples.
    """
    if sample_rate not in MCD_PARAMETERS:
        supported = ", ".join(str(rate) for rate in MCD_PARAMETERS)
        raise AudioError(f"MCD is defined at {supported} Hz only, not {sample_rate} Hz")
    if signal.size < MCD_FFT:
        raise TooShortAudioError(f"MCD needs at least {MCD_FFT} samples, got {signal.size}")
    pysptk, _ = _import_sptk()
    order, alpha = MCD_PARAMETERS[sample_rate]
    window = pysptk.sptk.hamming(MCD_FFT)
    frames = np.lib.stride_tricks.sliding_window_view(signal, MCD_FFT)[::MCD_HOP]
    return np.stack(
        [pysptk.mcep(frame * window, order, alpha, eps=1e-6, etype=1) for frame in frames]
    )


def _coarsen(sequence: np.ndarray) -> np.ndarray:
    """Mean of consecutive frame pairs (an odd last frame is dropped): FastDTW's half resolution."""
    even = sequence.shape[0] - sequence.shape[0] % 2
    return (sequence[0:even:2] + sequence[1:even:2]) / 2


def _expand_window(
    path: tuple[np.ndarray, np.ndarray], shape: tuple[int, int], radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """First and last column of every fine row: the coarse path grown by ``radius``, doubled.

    Coarse row ``c`` spans from the first column of row ``c - radius`` to the last column of row
    ``c + radius`` (path rows and columns never decrease), widened by ``radius``; rows past the
    path's last row repeat its bounds; each coarse row becomes two fine rows of doubled columns.
    """
    rows, columns = path
    last_row = int(rows[-1])
    first = np.full(last_row + 1, np.iinfo(np.int64).max)
    last = np.full(last_row + 1, -1)
    np.minimum.at(first, rows, columns)
    np.maximum.at(last, rows, columns)
    coarse = np.minimum(np.arange(shape[0]) // 2, last_row)
    low = np.maximum(first[np.maximum(coarse - radius, 0)] - radius, 0)
    high = last[np.minimum(coarse + radius, last_row)] + radius
    return 2 * low, np.minimum(2 * high + 1, shape[1] - 1)


def _euclidean_rows(frames: np.ndarray, frame: np.ndarray) -> list[float]:
    """Euclidean distance of every row of ``frames`` to ``frame`` (``sqrt(d @ d)`` like scipy)."""
    return [math.sqrt(float(difference @ difference)) for difference in frames - frame]


def _windowed_dtw(
    first: np.ndarray, second: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """DTW on Euclidean frame distances inside ``low[i] <= j <= high[i]``, as compiled fastdtw.

    Predecessors of (i, j): up (i-1, j) if ``j <= high[i-1]``, left (i, j-1) if ``j > low[i]``,
    diagonal (i-1, j-1) if ``low[i-1] < j <= high[i-1]``. Up wins only when strictly smallest,
    then left when strictly below the diagonal, else the diagonal (ties go diagonal).
    """
    inf = float("inf")
    # Virtual row -1 holds only the start cell (-1, -1), reachable diagonally from (0, 0).
    previous_low, previous_high, previous = -1, 0, [0.0]
    steps: list[bytearray] = []
    for i in range(first.shape[0]):
        start, stop = int(low[i]), int(high[i])
        current: list[float] = []
        row_steps = bytearray()  # one byte per cell: the window of a long file stays small
        for j, distance in enumerate(_euclidean_rows(second[start : stop + 1], first[i]), start):
            in_previous = j <= previous_high
            up = previous[j - previous_low] if in_previous and i > 0 else inf
            diagonal = previous[j - 1 - previous_low] if in_previous and j > previous_low else inf
            left = current[-1] if current else inf
            step = 0 if up < left and up < diagonal else 1 if left < diagonal else 2
            current.append((up, left, diagonal)[step] + distance)
            row_steps.append(step)
        steps.append(row_steps)
        previous_low, previous_high, previous = start, stop, current
    return _backtrack(steps, low, second.shape[0] - 1)


def _backtrack(
    steps: list[bytearray], low: np.ndarray, last_column: int
) -> tuple[np.ndarray, np.ndarray]:
    """Follow the chosen predecessors from the last cell back to (0, 0)."""
    row, column = len(steps) - 1, last_column
    path_rows, path_columns = [], []
    while row >= 0 and column >= 0:
        path_rows.append(row)
        path_columns.append(column)
        row_step, column_step = _MOVES[steps[row][column - int(low[row])]]
        row, column = row + row_step, column + column_step
    return np.array(path_rows[::-1]), np.array(path_columns[::-1])


def fast_dtw_path(
    first: np.ndarray, second: np.ndarray, radius: int = MCD_DTW_RADIUS
) -> tuple[np.ndarray, np.ndarray]:
    """FastDTW (Salvador & Chan 2007) alignment of two frame sequences, Euclidean distance.

    The path found at half resolution (pairwise frame means), grown by ``radius`` cells and
    projected back, bounds an exact DTW at full resolution; sequences shorter than
    ``radius + 2`` frames use full DTW. Same path as ``fastdtw.fastdtw(first, second, radius,
    dist=scipy.spatial.distance.euclidean)`` with the package's compiled extension (what pip
    builds); its pure-Python fallback breaks ties the other way and sizes the last rows
    differently, which can move MCD values by a few tenths of a dB.

    Args:
        first: Frames (N, D).
        second: Frames (M, D).
        radius: Window growth in coarse cells (``fastdtw``'s default is 1).

    Returns:
        Row (into ``first``) and column (into ``second``) indices of the path.

    Raises:
        TooLongAudioError: When the window exceeds :data:`MCD_MAX_DTW_CELLS` cells.
    """
    if radius < 1:
        raise ValueError("radius must be at least 1")
    rows, columns = first.shape[0], second.shape[0]
    if rows < radius + 2 or columns < radius + 2:
        low, high = np.zeros(rows, dtype=int), np.full(rows, columns - 1)
    else:
        coarse_path = fast_dtw_path(_coarsen(first), _coarsen(second), radius)
        low, high = _expand_window(coarse_path, (rows, columns), radius)
    cells = int(np.sum(high - low + 1))
    if cells > MCD_MAX_DTW_CELLS:
        raise TooLongAudioError(
            f"the MCD alignment (FastDTW) of these signals would need {cells} cells, more than "
            f"the limit of {MCD_MAX_DTW_CELLS}: the signals are too long or too dissimilar"
        )
    return _windowed_dtw(first, second, low, high)


def mcd_score(estimate: np.ndarray, reference: np.ndarray, *, sample_rate: int) -> float:
    """Mel-cepstral distortion in dB as computed by the URGENT 2024-2026 challenge evaluation.

    At the native rate (8, 16, 22.05, 24, 32, 44.1 or 48 kHz; no resampling) the estimate is
    scaled by the least-squares gain ``<ref, est> / (<est, est> + 1e-8)``; both signals become
    SPTK mel-cepstra (:func:`sptk_mel_cepstra`: 1024-sample Hamming frames, hop 256, order
    13/23/34/34/36/39/39 and alpha 0.31/0.42/0.45/0.46/0.50/0.53/0.55 by rate); frames are
    aligned with FastDTW (radius 1, Euclidean distance over all coefficients); and
    ``MCD = mean over path of (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2)`` with ``d`` running
    over *all* coefficients, c0 included. There is no silence removal.

    Args:
        estimate: Enhanced signal (T,).
        reference: Clean reference (T,), same rate (both are cut to the shorter length).
        sample_rate: Rate of both signals.

    Returns:
        MCD in dB (0 for identical signals, lower is better).

    Raises:
        AudioError: Silent, empty or non-finite input, fewer than 1024 samples, or a rate
            without SPTK parameters (the scorer reports NaN).

    Example:
        >>> reference = np.random.default_rng(0).standard_normal(4096)
        >>> round(mcd_score(reference, reference, sample_rate=16000), 6)
        0.0
        >>> round(mcd_score(0.5 * reference, reference, sample_rate=16000), 6)  # gain-invariant
        0.0
        >>> noisy = reference + np.random.default_rng(1).standard_normal(4096)
        >>> round(mcd_score(noisy, reference, sample_rate=16000), 2)
        2.64
    """
    estimate, reference = align_pair(estimate, reference, sample_rate)
    gain = np.dot(reference, estimate) / (np.dot(estimate, estimate) + MCD_GAIN_EPSILON)
    reference_cepstra = sptk_mel_cepstra(reference, sample_rate)
    estimate_cepstra = sptk_mel_cepstra(estimate * gain, sample_rate)
    rows, columns = fast_dtw_path(reference_cepstra, estimate_cepstra)
    difference = reference_cepstra[rows] - estimate_cepstra[columns]
    return float(np.mean(_MCD_SCALE * np.sqrt(np.sum(difference**2, axis=1))))


def _world_mel_cepstrum(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """WORLD spectral envelope -> mel-cepstrum (frames, MCD_WORLD_ORDER + 1)."""
    pysptk, pyworld = _import_sptk()
    frame_period = MCD_WORLD_FRAME_PERIOD_MS
    pitch, times = pyworld.dio(signal, sample_rate, frame_period=frame_period)
    pitch = pyworld.stonemask(signal, pitch, times, sample_rate)
    envelope = pyworld.cheaptrick(signal, pitch, times, sample_rate)
    alpha = pysptk.util.mcepalpha(sample_rate)
    return pysptk.sp2mc(envelope, order=MCD_WORLD_ORDER, alpha=alpha)


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


def mcd_world_score(estimate: np.ndarray, reference: np.ndarray, *, sample_rate: int) -> float:
    """The suite's previous MCD: WORLD envelope, c0 dropped, full DTW (not the URGENT metric).

    Signals are resampled to 16 kHz; WORLD (pyworld ``dio`` + ``stonemask`` + ``cheaptrick``,
    5 ms frames) gives the spectral envelope; ``pysptk.sp2mc`` converts it to a mel-cepstrum of
    order 24 with ``alpha = pysptk.util.mcepalpha(16000) = 0.41``; the energy term c0 is dropped;
    frames are aligned with full DTW on the Euclidean distance of c1..c24; and
    ``MCD = mean over path of (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2)``. This is the
    TTS-style MCD; its values are not comparable with the URGENT ``mcd`` labels.

    Args:
        estimate: Enhanced signal (T,).
        reference: Clean reference (T,).
        sample_rate: Rate of both signals.

    Returns:
        MCD in dB (0 for identical signals, lower is better).
    """
    estimate, reference = align_pair(estimate, reference, sample_rate)
    if sample_rate != MCD_WORLD_SAMPLE_RATE:
        estimate = resample(estimate, sample_rate, MCD_WORLD_SAMPLE_RATE).astype(np.float64)
        reference = resample(reference, sample_rate, MCD_WORLD_SAMPLE_RATE).astype(np.float64)
    estimate_cepstrum = _world_mel_cepstrum(estimate, MCD_WORLD_SAMPLE_RATE)[:, 1:]
    reference_cepstrum = _world_mel_cepstrum(reference, MCD_WORLD_SAMPLE_RATE)[:, 1:]
    difference = estimate_cepstrum[:, None, :] - reference_cepstrum[None, :, :]
    cost = np.sqrt(np.sum(difference**2, axis=-1))
    path_rows, path_columns = dtw_path(cost)
    return float(np.mean(_MCD_SCALE * cost[path_rows, path_columns]))
