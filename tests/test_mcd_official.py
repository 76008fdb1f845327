"""``mcd`` follows the URGENT challenge evaluation (SPTK mel-cepstra, c0 kept, FastDTW, LS gain).

The reference computation below is written from the description of the official script
(``evaluation_metrics/mcd_utils.py`` and ``mcd_metric`` of the URGENT 2024/2025 challenge
repositories) with plain loops and dictionaries, independently of ``sqa.metrics.perceptual``.
When the ``fastdtw`` package itself is installed, the path is also checked against it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

from sqa.errors import AudioError, SilentAudioError, TooShortAudioError
from sqa.metrics import get_metric_spec
from sqa.metrics.perceptual import fast_dtw_path, mcd_score, mcd_world_score, sptk_mel_cepstra
from sqa.metrics.scorer import MetricScorer, compute_metric
from sqa.synthetic import add_noise_at_snr, speech_like

pysptk = pytest.importorskip("pysptk")

# Official per-rate (order, alpha) of the SPTK mel-cepstral analysis.
OFFICIAL_PARAMETERS = {8000: (13, 0.31), 16000: (23, 0.42), 48000: (39, 0.55)}
MCD_CONSTANT = 10.0 / math.log(10.0) * math.sqrt(2.0)


def _reference_cepstra(signal: np.ndarray, rate: int) -> np.ndarray:
    """1024-sample frames every 256 samples, power-normalised Hamming window, SPTK mcep."""
    order, alpha = OFFICIAL_PARAMETERS[rate]
    window = np.hamming(1024) / math.sqrt(float(np.sum(np.hamming(1024) ** 2)))
    count = (signal.size - 1024) // 256 + 1
    frames = [signal[256 * index : 256 * index + 1024] * window for index in range(count)]
    return np.array([pysptk.mcep(frame, order, alpha, eps=1e-6, etype=1) for frame in frames])


def _reference_window(
    path: list[tuple[int, int]], rows: int, columns: int, radius: int
) -> dict[int, tuple[int, int]]:
    """Fine-row column bounds around a coarse path (compiled fastdtw's expansion)."""
    spans: dict[int, tuple[int, int]] = {}
    for i, j in path:
        low, high = spans.get(i, (j, j))
        spans[i] = (min(low, j), max(high, j))
    last = max(spans)
    bounds = {}
    for coarse in range(last + radius + 1):
        source = min(coarse, last)  # rows after the path's last row repeat its bounds
        low = max(0, spans[max(0, source - radius)][0] - radius)
        high = spans[min(last, source + radius)][1] + radius
        for row in (2 * coarse, 2 * coarse + 1):
            if row < rows:
                bounds[row] = (2 * low, min(columns - 1, 2 * high + 1))
    return bounds


def _reference_dtw(
    x: np.ndarray, y: np.ndarray, bounds: dict[int, tuple[int, int]]
) -> list[tuple[int, int]]:
    """Windowed DTW; predecessor rule and tie order of compiled fastdtw."""
    cost: dict[tuple[int, int], tuple[float, tuple[int, int] | None]] = {}
    for i in range(len(x)):
        low, high = bounds[i]
        above = bounds.get(i - 1)
        for j in range(low, high + 1):
            distance = float(np.linalg.norm(x[i] - y[j]))
            if i == j == 0:
                cost[0, 0] = (distance, None)
                continue
            up = cost[i - 1, j][0] if above and j <= above[1] else math.inf
            left = cost[i, j - 1][0] if j > low else math.inf
            diagonal = cost[i - 1, j - 1][0] if above and above[0] < j <= above[1] else math.inf
            if up < left and up < diagonal:
                cost[i, j] = (up + distance, (i - 1, j))
            elif left < diagonal:
                cost[i, j] = (left + distance, (i, j - 1))
            else:
                cost[i, j] = (diagonal + distance, (i - 1, j - 1))
    path, cell = [], (len(x) - 1, len(y) - 1)
    while cell is not None:
        path.append(cell)
        cell = cost[cell][1]
    return path[::-1]


def _reference_fastdtw(x: np.ndarray, y: np.ndarray, radius: int = 1) -> list[tuple[int, int]]:
    if len(x) < radius + 2 or len(y) < radius + 2:
        return _reference_dtw(x, y, {i: (0, len(y) - 1) for i in range(len(x))})
    half_x = np.array([(x[i] + x[i + 1]) / 2 for i in range(0, len(x) - 1, 2)])
    half_y = np.array([(y[i] + y[i + 1]) / 2 for i in range(0, len(y) - 1, 2)])
    coarse = _reference_fastdtw(half_x, half_y, radius)
    return _reference_dtw(x, y, _reference_window(coarse, len(x), len(y), radius))


def _reference_mcd(estimate: np.ndarray, reference: np.ndarray, rate: int) -> float:
    scaled = estimate * np.sum(reference * estimate) / (np.sum(estimate**2) + 1e-8)
    first, second = _reference_cepstra(reference, rate), _reference_cepstra(scaled, rate)
    path = _reference_fastdtw(first, second)
    return float(np.mean([MCD_CONSTANT * np.linalg.norm(first[i] - second[j]) for i, j in path]))


def _as_pairs(path: tuple[np.ndarray, np.ndarray]) -> list[tuple[int, int]]:
    return list(zip(path[0].tolist(), path[1].tolist(), strict=True))


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return speech_like(0.5, 16000, seed=21).astype(np.float64)


def test_identical_and_gain_scaled_signals_give_zero(clean: np.ndarray) -> None:
    # Not exactly 0: the gain <x, x> / (<x, x> + 1e-8) is a hair below 1, as in the official code.
    assert mcd_score(clean, clean, sample_rate=16000) == pytest.approx(0.0, abs=1e-6)
    # The least-squares gain removes a level difference, so c0 (kept) costs nothing.
    assert mcd_score(0.3 * clean, clean, sample_rate=16000) == pytest.approx(0.0, abs=1e-6)
    low_rate = speech_like(0.5, 8000, seed=22)
    assert mcd_score(low_rate, low_rate, sample_rate=8000) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("rate", sorted(OFFICIAL_PARAMETERS))
def test_single_frame_closed_form(rate: int) -> None:
    # 1024 samples are one frame, so the path is [(0, 0)] and MCD = C * ||c - c'|| over c0..cN.
    reference = speech_like(1024 / rate, rate, seed=23).astype(np.float64)
    estimate = add_noise_at_snr(reference, 10.0, seed=24).astype(np.float64)
    order = OFFICIAL_PARAMETERS[rate][0]
    assert sptk_mel_cepstra(reference, rate).shape == (1, order + 1)
    scaled = estimate * np.dot(reference, estimate) / (np.dot(estimate, estimate) + 1e-8)
    difference = _reference_cepstra(reference, rate)[0] - _reference_cepstra(scaled, rate)[0]
    expected = MCD_CONSTANT * math.sqrt(float(np.sum(difference**2)))
    assert mcd_score(estimate, reference, sample_rate=rate) == pytest.approx(expected, rel=1e-9)
    assert abs(difference[0]) > 0  # c0 differs and is part of the distance


def test_matches_reference_computation(clean: np.ndarray) -> None:
    lowpass = scipy.signal.butter(6, 2500, fs=16000, output="sos")
    degraded = {
        "white noise 10 dB": add_noise_at_snr(clean, 10.0, seed=25),
        "pink noise 0 dB": add_noise_at_snr(clean, 0.0, seed=26, colour="pink"),
        "low-pass 2.5 kHz": scipy.signal.sosfilt(lowpass, clean),
        "delayed 5 ms": np.concatenate([np.zeros(80), clean[:-80]]),
    }
    values = {}
    for name, estimate in degraded.items():
        estimate = np.asarray(estimate, dtype=np.float64)
        values[name] = mcd_score(estimate, clean, sample_rate=16000)
        expected = _reference_mcd(estimate, clean, 16000)
        assert values[name] == pytest.approx(expected, rel=1e-9, abs=1e-9), name
    assert 0 < values["white noise 10 dB"] < values["pink noise 0 dB"]


def test_fast_dtw_matches_reference_on_random_sequences() -> None:
    generator = np.random.default_rng(27)
    for trial in range(40):
        rows, columns = int(generator.integers(1, 40)), int(generator.integers(1, 40))
        x, y = generator.standard_normal((rows, 3)), generator.standard_normal((columns, 3))
        if trial % 2:  # integer-valued frames produce exact ties
            x, y = np.round(x), np.round(y)
        assert _as_pairs(fast_dtw_path(x, y)) == _reference_fastdtw(x, y), trial


def test_fast_dtw_path_is_diagonal_for_identical_sequences() -> None:
    frames = np.random.default_rng(28).standard_normal((37, 5))
    rows, columns = fast_dtw_path(frames, frames)
    assert rows.tolist() == columns.tolist() == list(range(37))


def test_fast_dtw_equals_fastdtw_package_when_installed() -> None:
    fastdtw = pytest.importorskip("fastdtw")
    from scipy.spatial.distance import euclidean

    generator = np.random.default_rng(29)
    for trial in range(60):
        rows, columns = int(generator.integers(1, 80)), int(generator.integers(1, 80))
        x, y = generator.standard_normal((rows, 2)), generator.standard_normal((columns, 2))
        if trial % 3 == 0:
            x, y = np.round(x), np.round(y)
        _, path = fastdtw.fastdtw(x, y, dist=euclidean)
        assert _as_pairs(fast_dtw_path(x, y)) == [tuple(map(int, cell)) for cell in path]


def test_typed_errors_for_invalid_input(clean: np.ndarray) -> None:
    with pytest.raises(SilentAudioError):
        mcd_score(np.zeros_like(clean), clean, sample_rate=16000)
    with pytest.raises(TooShortAudioError):
        mcd_score(clean[:1000], clean[:1000], sample_rate=16000)
    with pytest.raises(AudioError, match="not 12000 Hz"):
        mcd_score(clean, clean, sample_rate=12000)


def test_nan_never_zero_on_invalid_input(clean: np.ndarray) -> None:
    broken = clean.copy()
    broken[10] = np.nan
    cases = {
        "silent estimate": (np.zeros_like(clean), clean, 16000),
        "silent reference": (clean, np.zeros_like(clean), 16000),
        "NaN sample": (broken, clean, 16000),
        "empty": (clean[:0], clean, 16000),
        "shorter than one frame": (clean[:1023], clean[:1023], 16000),
        "unsupported rate": (clean, clean, 12000),
        "no reference": (clean, None, 16000),
    }
    for name, (estimate, reference, rate) in cases.items():
        value = compute_metric("mcd", estimate, reference, sample_rate=rate)
        assert math.isnan(value), name
    result = MetricScorer(["mcd"]).score(clean, 12000, clean)
    assert "12000 Hz" in result.errors["mcd"]


def test_registry_entry_and_previous_definition(clean: np.ndarray) -> None:
    spec = get_metric_spec("mcd")
    assert not spec.higher_is_better and spec.needs_reference
    assert spec.sample_rate is None and "URGENT" in spec.description
    # The previous WORLD-based definition stays available as a function (not a Track-2 key).
    assert mcd_world_score(clean, clean, sample_rate=16000) == pytest.approx(0.0, abs=1e-9)
