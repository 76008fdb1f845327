"""Procedural noise and simulated room impulse responses for training corpora.

Shipped models may only be trained on noise whose licence allows it, and the permissive real noise
recordings available offline are few (tens of files). These generators add seeded, licence-free
variety of the kinds a speech enhancer meets:

- coloured noise with a spectral slope ``1 / f^beta`` (white 0, pink 1, brown 2, and between);
- mains hum: a 50 or 60 Hz fundamental with decaying harmonics and slow amplitude wobble;
- clicks and crackle: Poisson-timed decaying impulses over a low floor;
- babble: several speech files (other speakers than the target's) summed at random offsets;
- modulated noise: coloured noise under a slow random envelope (traffic/wind-like);
- room impulse responses from pyroomacoustics' image-source model (shoebox rooms with random
  size, absorption and source/microphone positions).

Every function is a pure function of its arguments and a ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sqa.errors import MissingDependencyError, SqaError

NOISE_KINDS = ("coloured", "hum", "clicks", "babble", "modulated")


def coloured_noise(length: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise ``(length,)`` with power spectrum ``~ 1 / f^beta``, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.arange(spectrum.shape[0], dtype=np.float64)
    frequencies[0] = 1.0  # the DC bin keeps its weight instead of dividing by zero
    shaped = np.fft.irfft(spectrum / frequencies ** (beta / 2), n=length)
    return (shaped / (np.std(shaped) + 1e-12)).astype(np.float32)


def hum(length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum ``(length,)``: 50/60 Hz with 2-12 decaying harmonics, unit RMS."""
    time = np.arange(length) / sample_rate
    fundamental = float(rng.choice([50.0, 60.0])) * rng.uniform(0.995, 1.005)
    harmonics = int(rng.integers(2, 13))
    decay = rng.uniform(0.3, 0.9)
    signal = np.zeros(length)
    for order in range(1, harmonics + 1):
        if order * fundamental >= sample_rate / 2:
            break
        phase = rng.uniform(0, 2 * np.pi)
        signal += decay ** (order - 1) * np.sin(2 * np.pi * order * fundamental * time + phase)
    wobble = 1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.1, 1.0) * time)
    signal = signal * wobble + 0.01 * rng.standard_normal(length)
    return (signal / (np.std(signal) + 1e-12)).astype(np.float32)


def clicks(length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson clicks (2-40 per second) of decaying noise bursts over a faint floor, unit RMS."""
    rate = rng.uniform(2.0, 40.0)
    count = max(1, int(rng.poisson(rate * length / sample_rate)))
    signal = 0.005 * rng.standard_normal(length)
    for start in rng.integers(0, length, size=count):
        size = int(rng.uniform(0.0005, 0.01) * sample_rate) + 1
        burst = rng.standard_normal(size) * np.exp(-np.arange(size) / (size / 4))
        end = min(length, int(start) + size)
        signal[start:end] += rng.uniform(0.2, 1.0) * burst[: end - start]
    return (signal / (np.std(signal) + 1e-12)).astype(np.float32)


def babble(length: int, talkers: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Sum of 3-8 talkers ``(length,)`` at random offsets and gains, unit RMS.

    Args:
        length: Output samples.
        talkers: Speech signals at the output rate (looped when shorter than ``length``).
        rng: Random generator.

    Raises:
        SqaError: If ``talkers`` is empty.
    """
    if not talkers:
        raise SqaError("babble noise needs speech files (--babble-speech)")
    signal = np.zeros(length)
    for _ in range(int(rng.integers(3, 9))):
        speech = talkers[int(rng.integers(len(talkers)))]
        looped = np.tile(speech, int(np.ceil(2 * length / max(speech.shape[0], 1))) + 1)
        start = int(rng.integers(0, looped.shape[0] - length + 1))
        piece = looped[start : start + length]
        signal += rng.uniform(0.5, 1.0) * piece / (np.std(piece) + 1e-12)
    return (signal / (np.std(signal) + 1e-12)).astype(np.float32)


def modulated(length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Coloured noise under a slow random envelope (0.1-2 Hz), unit RMS."""
    base = coloured_noise(length, rng.uniform(0.5, 2.0), rng)
    knots = max(2, int(length / sample_rate * rng.uniform(0.1, 2.0)) + 2)
    envelope = np.interp(
        np.arange(length), np.linspace(0, length - 1, knots), rng.uniform(0.1, 1.0, knots)
    )
    signal = base * envelope
    return (signal / (np.std(signal) + 1e-12)).astype(np.float32)


def procedural_noise(
    kind: str,
    length: int,
    sample_rate: int,
    rng: np.random.Generator,
    talkers: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """One noise signal ``(length,)`` of ``kind`` (see :data:`NOISE_KINDS`), unit RMS.

    Raises:
        SqaError: For an unknown kind.
    """
    if kind == "coloured":
        return coloured_noise(length, float(rng.uniform(0.0, 2.0)), rng)
    if kind == "hum":
        return hum(length, sample_rate, rng)
    if kind == "clicks":
        return clicks(length, sample_rate, rng)
    if kind == "babble":
        return babble(length, talkers, rng)
    if kind == "modulated":
        return modulated(length, sample_rate, rng)
    raise SqaError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")


def simulated_rir(sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A shoebox-room impulse response from pyroomacoustics' image-source model.

    Room 3-10 x 3-8 x 2.4-4 m, RT60 0.2-1.0 s (Sabine inversion gives the wall absorption),
    source and microphone at least 0.5 m from the walls and 0.5-4 m apart.

    Returns:
        ``(rir (T,), description)`` with the room size, RT60 and distance.

    Raises:
        MissingDependencyError: If pyroomacoustics is not installed.
    """
    try:
        import pyroomacoustics
    except ImportError:
        raise MissingDependencyError(
            "simulated RIRs need pyroomacoustics: pip install 'sqa-suite[corpus]'"
        ) from None
    size = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.4, 4)])
    rt60 = float(rng.uniform(0.2, 1.0))
    absorption, max_order = pyroomacoustics.inverse_sabine(rt60, size)
    room = pyroomacoustics.ShoeBox(
        size,
        fs=sample_rate,
        materials=pyroomacoustics.Material(absorption),
        max_order=min(int(max_order), 20),  # higher orders add little below ~1 s RT60 but cost
    )
    while True:
        source = rng.uniform(0.5, size - 0.5)
        microphone = rng.uniform(0.5, size - 0.5)
        distance = float(np.linalg.norm(source - microphone))
        if 0.5 <= distance <= 4.0:
            break
    room.add_source(source)
    room.add_microphone(microphone)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float32)
    description = {"room": [round(float(v), 2) for v in size], "rt60": round(rt60, 3)}
    description["distance"] = round(distance, 2)
    return rir, description
