"""Classical single-channel enhancers used to create secondary-processing artifacts.

The CCF-AATC 2025 challenge degrades speech by passing it through imperfect upstream enhancers
(its section II-B3). These three textbook methods produce the typical artifacts cheaply:
spectral subtraction leaves musical noise, the Wiener filter with a decision-directed a-priori
SNR muffles weak speech, and over-suppression (an exaggerated Wiener gain) removes speech energy
together with the noise. All share a noise power estimate taken from the quietest frames.
:func:`get_enhancer` also returns the pretrained neural back ends of :mod:`sqa.simulation.neural`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import signal as scipy_signal

from sqa.errors import SqaError

WINDOW_MS = 32.0
QUIET_FRAME_FRACTION = 0.15  # frames used for the noise estimate: the quietest 15 %
POWER_FLOOR = 1e-12


def _stft(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """Complex STFT ``(F, N)`` with a 32 ms Hann window and 75 % overlap; returns it and n_fft."""
    n_fft = int(2 ** np.ceil(np.log2(sample_rate * WINDOW_MS / 1000)))
    _, _, spectrum = scipy_signal.stft(
        samples, nperseg=n_fft, noverlap=3 * n_fft // 4, window="hann", boundary="even"
    )
    return spectrum, n_fft


def _istft(spectrum: np.ndarray, n_fft: int, length: int) -> np.ndarray:
    """Inverse of :func:`_stft`, cut or zero-padded to ``length`` samples."""
    _, samples = scipy_signal.istft(
        spectrum, nperseg=n_fft, noverlap=3 * n_fft // 4, window="hann", boundary=True
    )
    samples = samples[:length]
    return np.pad(samples, (0, length - samples.shape[0])).astype(np.float32)


def estimate_noise_power(power: np.ndarray) -> np.ndarray:
    """Noise power per bin ``(F, 1)``: the mean of the quietest frames of ``power (F, N)``."""
    frame_energy = power.sum(axis=0)
    count = max(1, round(QUIET_FRAME_FRACTION * power.shape[1]))
    quietest = np.argsort(frame_energy)[:count]
    return power[:, quietest].mean(axis=1, keepdims=True) + POWER_FLOOR


def spectral_subtraction(
    samples: np.ndarray, sample_rate: int, *, over_subtraction: float = 2.0, floor: float = 0.02
) -> np.ndarray:
    """Power spectral subtraction with a spectral floor (leaves musical noise).

    Args:
        samples: Noisy speech ``(T,)``.
        sample_rate: Its rate in Hz.
        over_subtraction: Multiple of the noise estimate that is subtracted.
        floor: Minimum remaining fraction of the noisy power.

    Returns:
        Processed speech ``(T,)`` float32.
    """
    spectrum, n_fft = _stft(samples, sample_rate)
    power = np.abs(spectrum) ** 2
    noise = estimate_noise_power(power)
    cleaned = np.maximum(power - over_subtraction * noise, floor * power)
    gain = np.sqrt(cleaned / np.maximum(power, POWER_FLOOR))
    return _istft(gain * spectrum, n_fft, samples.shape[0])


def _decision_directed_gain(
    power: np.ndarray, noise: np.ndarray, smoothing: float, exponent: float, floor: float
) -> np.ndarray:
    """Wiener gains ``(F, N)`` from the decision-directed a-priori SNR (Ephraim-Malah)."""
    posterior = power / noise
    gains = np.empty_like(power)
    previous = np.ones(power.shape[0])
    for frame in range(power.shape[1]):
        prior = smoothing * previous**2 * posterior[:, max(frame - 1, 0)] + (1 - smoothing) * (
            np.maximum(posterior[:, frame] - 1.0, 0.0)
        )
        gain = np.maximum((prior / (1.0 + prior)) ** exponent, floor)
        gains[:, frame] = gain
        previous = gain
    return gains


def wiener_filter(
    samples: np.ndarray,
    sample_rate: int,
    *,
    smoothing: float = 0.98,
    noise_overestimate: float = 1.0,
    exponent: float = 1.0,
    floor: float = 0.05,
) -> np.ndarray:
    """Wiener filtering with a decision-directed a-priori SNR estimate.

    Args:
        samples: Noisy speech ``(T,)``.
        sample_rate: Its rate in Hz.
        smoothing: Decision-directed smoothing factor.
        noise_overestimate: Multiplier of the noise estimate (> 1 suppresses more).
        exponent: Gain exponent (> 1 suppresses more, distorting speech).
        floor: Minimum gain.

    Returns:
        Processed speech ``(T,)`` float32.
    """
    spectrum, n_fft = _stft(samples, sample_rate)
    power = np.abs(spectrum) ** 2
    noise = noise_overestimate * estimate_noise_power(power)
    gains = _decision_directed_gain(power, noise, smoothing, exponent, floor)
    return _istft(gains * spectrum, n_fft, samples.shape[0])


def over_suppression(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """An aggressive Wiener filter (noise x4, gain cubed, no floor) that eats speech too."""
    return wiener_filter(samples, sample_rate, noise_overestimate=4.0, exponent=3.0, floor=0.0)


CLASSICAL_ENHANCERS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "spectral_subtraction": spectral_subtraction,
    "wiener": wiener_filter,
    "over_suppression": over_suppression,
}


def get_enhancer(name: str) -> Callable[[np.ndarray, int], np.ndarray]:
    """Look up a secondary-processing enhancer: a classical one or a neural back end.

    Neural names (``dfn3``, ``rnnoise``, ``nsnet2``, ``gtcrn``; see :mod:`sqa.simulation.neural`)
    return a callable that loads its model on first use, so a lookup never needs the package.

    Raises:
        SqaError: For an unknown name (lists the valid ones).
    """
    if name in CLASSICAL_ENHANCERS:
        return CLASSICAL_ENHANCERS[name]
    # Imported here: the neural module pulls in sqa.audio (and torch); this one stays light.
    from sqa.simulation.neural import ENHANCERS as NEURAL_ENHANCERS

    if name in NEURAL_ENHANCERS:
        return NEURAL_ENHANCERS[name]
    raise SqaError(
        f"unknown secondary-processing method {name!r}; valid: "
        f"{', '.join(sorted(CLASSICAL_ENHANCERS))} (classical), "
        f"{', '.join(NEURAL_ENHANCERS)} (neural)"
    )
