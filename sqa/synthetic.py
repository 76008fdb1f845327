"""Synthetic speech-like audio and system folders for demos, benchmarks and tests.

Nothing here is meant to sound natural: it produces deterministic signals with the properties the
metrics and models react to (a harmonic source with a moving pitch, a formant-shaped spectrum,
syllabic amplitude modulation with pauses, some fricative noise), so that quality orderings built by
adding noise are unambiguous. Tests and the demo use it because no real speech ships with the suite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

# Formant centre frequencies (Hz) of a few vowels; each syllable picks one.
_VOWEL_FORMANTS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480))


def speech_like(duration: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A deterministic speech-like signal.

    Args:
        duration: Length in seconds.
        sample_rate: Sampling rate in Hz.
        seed: Seed of the pitch contour, vowel sequence and fricatives.

    Returns:
        float32 array of shape (round(duration * sample_rate),), peak 0.5.
    """
    generator = np.random.default_rng(seed)
    length = round(duration * sample_rate)
    time = np.arange(length) / sample_rate
    base_pitch = generator.uniform(100.0, 220.0)
    pitch = base_pitch * (1 + 0.08 * np.sin(2 * np.pi * generator.uniform(0.5, 2.0) * time))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    syllable_rate = generator.uniform(3.0, 5.0)
    syllable_index = np.floor(time * syllable_rate).astype(int)
    vowels = generator.integers(0, len(_VOWEL_FORMANTS), size=syllable_index.max() + 1)
    signal = np.zeros(length)
    for harmonic in range(1, 40):
        frequency = harmonic * pitch
        gain = np.zeros(length)
        for formant_number in range(3):
            centre = np.array([_VOWEL_FORMANTS[v][formant_number] for v in vowels])[syllable_index]
            gain += np.exp(-0.5 * ((frequency - centre) / (80.0 + 40 * formant_number)) ** 2)
        audible = frequency < sample_rate / 2
        signal += audible * (gain + 0.02) * np.sin(harmonic * phase) / harmonic**0.5
    envelope = np.clip(np.sin(np.pi * (time * syllable_rate % 1.0)), 0, None) ** 0.6
    pauses = generator.random(syllable_index.max() + 1) < 0.15
    envelope[pauses[syllable_index]] = 0.0
    fricative = generator.standard_normal(length) * (np.sin(np.pi * time * syllable_rate) > 0.95)
    signal = signal * envelope + 0.05 * np.diff(fricative, prepend=0.0)
    return (0.5 * signal / (np.max(np.abs(signal)) + 1e-12)).astype(np.float32)


def add_noise_at_snr(
    clean: np.ndarray, snr_db: float, seed: int = 0, colour: str = "white"
) -> np.ndarray:
    """Add white or pink Gaussian noise at a given SNR (over the whole signal).

    Args:
        clean: Signal of shape (T,).
        snr_db: Target signal-to-noise ratio in dB.
        seed: Noise seed.
        colour: ``"white"`` or ``"pink"`` (1/f power spectrum).

    Returns:
        float32 array of shape (T,); rescaled only if its peak would exceed 0.99.
    """
    generator = np.random.default_rng(seed)
    noise = generator.standard_normal(clean.shape[-1])
    if colour == "pink":
        spectrum = np.fft.rfft(noise)
        spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
        noise = np.fft.irfft(spectrum, n=clean.shape[-1])
    elif colour != "white":
        raise ValueError(f"unknown noise colour {colour!r}; use 'white' or 'pink'")
    signal_power = np.mean(clean.astype(np.float64) ** 2)
    noise *= np.sqrt(signal_power / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    noisy = clean + noise
    peak = np.max(np.abs(noisy))
    return (noisy * (0.99 / peak) if peak > 0.99 else noisy).astype(np.float32)


def write_system_folders(
    root: str | Path,
    snr_by_system: Mapping[str, float],
    utterances: int | Sequence[str] = 4,
    *,
    duration: float = 2.0,
    sample_rate: int = 16000,
    seed: int = 0,
) -> Path:
    """Write ``root/<system>/<utt>.wav`` folders plus clean references in ``root/_reference``.

    Systems are the same utterances with noise at the given SNR, so a higher SNR is a better system.

    Args:
        root: Output folder (created).
        snr_by_system: System name -> SNR in dB (``float("inf")`` for the clean signal itself).
        utterances: A count or explicit utterance ids.
        duration: Seconds per utterance.
        sample_rate: Sampling rate of every file.
        seed: Base seed; utterance ``i`` uses ``seed + i``.

    Returns:
        The folder of clean references.
    """
    import soundfile

    root = Path(root)
    names = (
        [f"utt{i:03d}" for i in range(utterances)]
        if isinstance(utterances, int)
        else list(utterances)
    )
    reference_folder = root / "_reference"
    reference_folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        clean = speech_like(duration, sample_rate, seed + index)
        soundfile.write(reference_folder / f"{name}.wav", clean, sample_rate)
        for system_number, (system, snr) in enumerate(snr_by_system.items()):
            folder = root / system
            folder.mkdir(exist_ok=True)
            noise_seed = seed + 1000 * (system_number + 1) + index
            audio = clean if np.isinf(snr) else add_noise_at_snr(clean, snr, noise_seed)
            soundfile.write(folder / f"{name}.wav", audio, sample_rate)
    return reference_folder


def write_labelled_clips(
    folder: str | Path, count: int, *, noise_step: float = 0.02, duration: float = 0.5
) -> Path:
    """Write ``count`` noisy speech-like clips with a ``mos`` label and their Track-2 listing.

    Clip ``i`` has noise of standard deviation ``noise_step * (i + 1)`` and the label
    ``1 + 4 i / max(count - 1, 1)`` (a known order), for tiny training runs in tests and demos.

    Returns:
        The ``data.jsonl`` in ``folder``.
    """
    from sqa.audio import save_audio
    from sqa.data import AudioRecord, write_track2_jsonl

    target = Path(folder)
    records = []
    for index in range(count):
        clean = speech_like(duration, seed=index)
        noise = np.random.default_rng(index).normal(0, noise_step * (index + 1), clean.shape)
        path = save_audio(target / f"u{index}.wav", np.clip(clean + noise, -1, 1), 16000)
        label = 1.0 + 4.0 * index / max(count - 1, 1)
        records.append(AudioRecord(f"u{index}", "sys", str(path), metrics={"mos": label}))
    return write_track2_jsonl(target / "data.jsonl", records, force=True)
