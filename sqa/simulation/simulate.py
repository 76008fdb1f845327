"""Seeded on-the-fly degradation of clean speech (CCF-AATC 2025 pipeline, section II-B).

Every step is a pure function of its inputs and a ``numpy.random.Generator``, so a pair is
reproducible from one seed. :class:`Simulator` chains them in a fixed order:

1. reverberation (p 0.5): the input is convolved with a measured RIR; the training target becomes
   the *early* reverberant speech (direct path + 50 ms), both shifted so the direct path is at 0;
2. additive noise (p 0.9) at an SNR ~ U(-5, 20) dB measured on *active* speech frames;
3. clipping (p 0.25) at ``level x peak`` with level ~ U(0.06, 0.9);
4. band limitation (p 0.5): resampled down to a random lower rate and back (soxr);
5. secondary-processing artifacts (p 0.2): a classical or neural enhancer (or a restorer);
6. codec (p 0.3): MP3 (24-128 kbit/s) or Ogg/Vorbis through libsndfile, delay-compensated;
7. packet loss (p 0.1): 20 ms frames dropped (zeroed) at 5-25 % with bursts (Gilbert model).

Finally noisy and target are scaled by the same gain to a random level, peak-safe.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from scipy import signal as scipy_signal

from sqa.audio import load_audio, resample
from sqa.errors import SqaError
from sqa.simulation.classical import get_enhancer
from sqa.simulation.neural import NeuralEnhancer

ACTIVITY_THRESHOLD_DB = -40.0  # frames within 40 dB of the loudest frame count as active speech
PEAK_LIMIT = 0.95
_MP3_BITRATE_LIMITS = ((32000, 32, 320), (16000, 8, 160), (8000, 8, 64))  # min rate, kbit/s range


@dataclass(frozen=True)
class SimulationConfig:
    """Probabilities and parameter ranges of the degradation pipeline.

    Attributes:
        sample_rate: Working rate of the simulated pairs in Hz.
        segment_seconds: Length of each pair.
        snr_range: Additive-noise SNR range in dB (active speech vs noise).
        noise_probability: Probability of additive noise.
        reverb_probability: Probability of reverberation.
        early_reverb_ms: Length of the early part kept in the target after the direct path.
        clipping_probability: Probability of clipping.
        clip_level_range: Clipping threshold as a fraction of the peak.
        bandlimit_probability: Probability of band limitation.
        bandlimit_rates: Candidate lower rates (only those below ``sample_rate`` are used).
        secondary_probability: Probability of secondary-processing artifacts.
        secondary_methods: Enhancers to draw from: classical ones (see
            :mod:`sqa.simulation.classical`) and, when their packages are installed, the neural
            back ends ``dfn3``, ``rnnoise``, ``nsnet2``, ``gtcrn`` (:mod:`sqa.simulation.neural`).
        codec_probability: Probability of a lossy codec.
        codecs: Codecs to draw from (``"mp3"``, ``"vorbis"``).
        mp3_bitrates: MP3 bit rates in kbit/s (clamped to what the rate allows).
        vorbis_qualities: Vorbis compression levels in [0, 1] (1 = smallest file).
        packet_loss_probability: Probability of packet loss.
        packet_ms: Packet (frame) length in ms.
        loss_rate_range: Fraction of lost packets.
        burst_length_range: Mean length of a loss burst in packets.
        level_range_db: Output RMS level range in dBFS.
    """

    sample_rate: int = 16000
    segment_seconds: float = 2.0
    snr_range: tuple[float, float] = (-5.0, 20.0)
    noise_probability: float = 0.9
    reverb_probability: float = 0.5
    early_reverb_ms: float = 50.0
    clipping_probability: float = 0.25
    clip_level_range: tuple[float, float] = (0.06, 0.9)
    bandlimit_probability: float = 0.5
    bandlimit_rates: tuple[int, ...] = (4000, 8000, 16000, 24000, 32000)
    secondary_probability: float = 0.2
    secondary_methods: tuple[str, ...] = ("spectral_subtraction", "wiener", "over_suppression")
    codec_probability: float = 0.3
    codecs: tuple[str, ...] = ("mp3", "vorbis")
    mp3_bitrates: tuple[int, ...] = (24, 32, 48, 64, 96, 128)
    vorbis_qualities: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9)
    packet_loss_probability: float = 0.1
    packet_ms: float = 20.0
    loss_rate_range: tuple[float, float] = (0.05, 0.25)
    burst_length_range: tuple[float, float] = (1.0, 3.0)
    level_range_db: tuple[float, float] = (-33.0, -18.0)


@dataclass
class SimulatedPair:
    """One degraded/target pair: ``noisy`` and ``target`` are float32 ``(T,)``."""

    noisy: np.ndarray
    target: np.ndarray
    sample_rate: int
    info: dict[str, Any] = field(default_factory=dict)


def frame_powers(samples: np.ndarray, sample_rate: int, frame_ms: float = 20.0) -> np.ndarray:
    """Mean power of consecutive non-overlapping frames ``(N,)`` (the tail is dropped)."""
    size = max(1, int(sample_rate * frame_ms / 1000))
    count = max(1, samples.shape[0] // size)
    frames = np.resize(samples.astype(np.float64), count * size).reshape(count, size)
    return np.mean(frames**2, axis=1)


def active_speech_power(samples: np.ndarray, sample_rate: int) -> float:
    """Mean power over frames within 40 dB of the loudest frame (pauses excluded)."""
    powers = frame_powers(samples, sample_rate)
    if powers.max() <= 0:
        raise SqaError("cannot measure the level of silent speech")
    active = powers >= powers.max() * 10 ** (ACTIVITY_THRESHOLD_DB / 10)
    return float(powers[active].mean())


def fit_length(samples: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``length``-sample window of ``samples``, looped when it is shorter."""
    if samples.shape[0] < length:
        samples = np.tile(samples, int(np.ceil(length / samples.shape[0])) + 1)
    start = int(rng.integers(0, samples.shape[0] - length + 1))
    return samples[start : start + length]


def add_noise(speech: np.ndarray, noise: np.ndarray, snr_db: float, sample_rate: int) -> np.ndarray:
    """Mix ``noise`` (same length) into ``speech`` at ``snr_db`` measured on active speech."""
    noise_power = float(np.mean(noise.astype(np.float64) ** 2))
    if noise_power <= 0:
        raise SqaError("cannot mix silent noise at a given SNR")
    gain = np.sqrt(active_speech_power(speech, sample_rate) / (noise_power * 10 ** (snr_db / 10)))
    return (speech + gain * noise).astype(np.float32)


def reverberate(
    speech: np.ndarray, rir: np.ndarray, sample_rate: int, early_ms: float = 50.0
) -> tuple[np.ndarray, np.ndarray]:
    """Convolve with a RIR; return ``(reverberant, early)`` aligned to the direct path.

    ``early`` keeps the RIR up to ``early_ms`` after its direct path (largest peak): it is
    the target the restorer should produce (late reverberation removed, early reflections kept).
    """
    direct = int(np.argmax(np.abs(rir)))
    rir = rir / (np.abs(rir[direct]) + 1e-12)
    early_rir = rir[: direct + int(sample_rate * early_ms / 1000) + 1]
    length = speech.shape[0]
    reverberant = scipy_signal.fftconvolve(speech, rir)[direct : direct + length]
    early = scipy_signal.fftconvolve(speech, early_rir)[direct : direct + length]
    return reverberant.astype(np.float32), early.astype(np.float32)


def clip(samples: np.ndarray, level: float) -> np.ndarray:
    """Hard-clip at ``level`` times the peak magnitude."""
    threshold = level * float(np.max(np.abs(samples)))
    return np.clip(samples, -threshold, threshold).astype(np.float32)


def band_limit(samples: np.ndarray, sample_rate: int, low_rate: int) -> np.ndarray:
    """Resample down to ``low_rate`` and back: energy above ``low_rate / 2`` is removed."""
    restored = resample(resample(samples, sample_rate, low_rate), low_rate, sample_rate)
    restored = restored[: samples.shape[0]]
    return np.pad(restored, (0, samples.shape[0] - restored.shape[0])).astype(np.float32)


def _mp3_compression_level(sample_rate: int, bitrate: int) -> float:
    """libsndfile maps compression level 0..1 linearly onto the allowed CBR range."""
    lowest, highest = (
        next((low, high) for minimum, low, high in _MP3_BITRATE_LIMITS if sample_rate >= minimum)
        if sample_rate >= _MP3_BITRATE_LIMITS[-1][0]
        else _MP3_BITRATE_LIMITS[-1][1:]
    )
    kbps = min(max(bitrate, lowest), highest)
    return float(min((highest - kbps) / (highest - lowest), 0.99))


def _align(decoded: np.ndarray, original: np.ndarray, max_delay: int) -> np.ndarray:
    """Remove the codec delay (found by cross-correlation) and match the original length."""
    length = original.shape[0]
    span = min(max_delay, max(0, decoded.shape[0] - 1))
    window = min(length, decoded.shape[0] - span) if decoded.shape[0] > span else 0
    delay = 0
    if window > 0:
        scores = [
            float(np.dot(decoded[lag : lag + window], original[:window])) for lag in range(span + 1)
        ]
        delay = int(np.argmax(scores))
    aligned = decoded[delay : delay + length]
    return np.pad(aligned, (0, length - aligned.shape[0])).astype(np.float32)


def codec(samples: np.ndarray, sample_rate: int, kind: str, setting: float) -> np.ndarray:
    """Encode and decode through libsndfile (in memory), delay-compensated.

    Args:
        samples: Signal ``(T,)``; values beyond full scale are clipped by the encoder.
        sample_rate: Its rate (MP3 needs 8, 11.025, 12, 16, 22.05, 24, 32, 44.1 or 48 kHz).
        kind: ``"mp3"`` (``setting`` = kbit/s) or ``"vorbis"`` (``setting`` = compression level).
        setting: See ``kind``.

    Raises:
        SqaError: For an unknown codec or one libsndfile cannot write here.
    """
    if kind == "mp3":
        options = {
            "format": "MP3",
            "subtype": "MPEG_LAYER_III",
            "bitrate_mode": "CONSTANT",
            "compression_level": _mp3_compression_level(sample_rate, int(setting)),
        }
    elif kind == "vorbis":
        options = {"format": "OGG", "subtype": "VORBIS", "compression_level": float(setting)}
    else:
        raise SqaError(f"unknown codec {kind!r}; use 'mp3' or 'vorbis'")
    buffer = io.BytesIO()
    try:
        soundfile.write(buffer, np.clip(samples, -1.0, 1.0), sample_rate, **options)
        buffer.seek(0)
        decoded, _ = soundfile.read(buffer, dtype="float32")
    except (soundfile.SoundFileError, RuntimeError, TypeError) as error:
        raise SqaError(
            f"libsndfile cannot run the {kind} codec at {sample_rate} Hz: {error}"
        ) from None
    return _align(decoded, samples, max_delay=int(0.1 * sample_rate))


def packet_loss(
    samples: np.ndarray,
    sample_rate: int,
    loss_rate: float,
    mean_burst: float,
    rng: np.random.Generator,
    packet_ms: float = 20.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Zero whole packets following a two-state (Gilbert) loss model.

    The chain leaves the loss state with probability ``1 / mean_burst`` and enters it with the
    probability that makes the stationary loss fraction ``loss_rate``.

    Returns:
        ``(signal, lost)``: the signal ``(T,)`` and a boolean mask of lost packets ``(P,)``.
    """
    size = max(1, int(sample_rate * packet_ms / 1000))
    count = int(np.ceil(samples.shape[0] / size))
    leave = 1.0 / max(mean_burst, 1.0)
    enter = min(1.0, leave * loss_rate / max(1.0 - loss_rate, 1e-6))
    lost = np.zeros(count, dtype=bool)
    state = rng.random() < loss_rate
    for index in range(count):
        lost[index] = state
        state = rng.random() >= leave if state else rng.random() < enter
    mask = np.repeat(~lost, size)[: samples.shape[0]]
    return (samples * mask).astype(np.float32), lost


def _draw(rng: np.random.Generator, probability: float) -> bool:
    # One draw per step whatever its outcome, so a step's decision never shifts the others.
    return bool(rng.random() < probability)


def _check_secondary_methods(config: SimulationConfig) -> None:
    """Fail at construction, not at the first pair that happens to draw a bad method."""
    for method in config.secondary_methods:
        enhancer = get_enhancer(method)  # unknown names raise, listing the valid ones
        if isinstance(enhancer, NeuralEnhancer) and config.secondary_probability > 0:
            enhancer.ensure_installed()


class Simulator:
    """Draws seeded degraded/target pairs from lists of clean speech, noise and RIR files.

    Args:
        config: Degradation probabilities and ranges.
        speech_files: Clean speech files (utterances are concatenated to fill a segment).
        noise_files: Noise recordings.
        rir_files: Room impulse responses (reverberation is skipped when empty).
        secondary_restorer: Optional extra upstream enhancer ``f(samples, rate) -> samples``
            (e.g. a restorer checkpoint) drawn alongside the classical methods.

    Raises:
        SqaError: If no speech, or noise with a non-zero noise probability, is given, or a
            secondary method is unknown.
        MissingDependencyError: If a neural secondary method's package is not installed.
    """

    def __init__(
        self,
        config: SimulationConfig,
        speech_files: Sequence[str | Path],
        noise_files: Sequence[str | Path] = (),
        rir_files: Sequence[str | Path] = (),
        secondary_restorer: Callable[[np.ndarray, int], np.ndarray] | None = None,
    ) -> None:
        if not speech_files:
            raise SqaError("the simulator needs at least one clean speech file")
        if not noise_files and config.noise_probability > 0:
            raise SqaError("the simulator needs noise files (or noise_probability = 0)")
        _check_secondary_methods(config)
        self.config = config
        self.speech_files = [str(path) for path in speech_files]
        self.noise_files = [str(path) for path in noise_files]
        self.rir_files = [str(path) for path in rir_files]
        self.secondary_restorer = secondary_restorer
        self._cache: dict[str, np.ndarray] = {}

    def _load(self, path: str) -> np.ndarray:
        if path not in self._cache:
            self._cache[path] = load_audio(path, sample_rate=self.config.sample_rate)[0]
        return self._cache[path]

    def clean_segment(self, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        """Concatenate random utterances (short pauses between) and cut one segment."""
        rate = self.config.sample_rate
        length = round(self.config.segment_seconds * rate)
        pieces: list[np.ndarray] = []
        names: list[str] = []
        while sum(piece.shape[0] for piece in pieces) < length:
            path = self.speech_files[int(rng.integers(len(self.speech_files)))]
            pieces += [self._load(path), np.zeros(int(rng.uniform(0.05, 0.3) * rate), np.float32)]
            names.append(Path(path).name)
        joined = np.concatenate(pieces)
        start = int(rng.integers(0, joined.shape[0] - length + 1))
        return joined[start : start + length].astype(np.float32), names

    def _acoustic(
        self, clean: np.ndarray, rng: np.random.Generator, info: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        config, rate = self.config, self.config.sample_rate
        target, degraded = clean, clean
        if _draw(rng, config.reverb_probability) and self.rir_files:
            rir_path = self.rir_files[int(rng.integers(len(self.rir_files)))]
            degraded, target = reverberate(
                clean, self._load(rir_path), rate, config.early_reverb_ms
            )
            info["reverb"] = Path(rir_path).name
        if _draw(rng, config.noise_probability) and active_speech_power(target, rate) > 0:
            noise_path = self.noise_files[int(rng.integers(len(self.noise_files)))]
            noise = fit_length(self._load(noise_path), degraded.shape[0], rng)
            snr = float(rng.uniform(*config.snr_range))
            degraded = add_noise(degraded, noise, snr, rate)
            info.update(noise=Path(noise_path).name, snr_db=round(snr, 2))
        if _draw(rng, config.clipping_probability):
            level = float(rng.uniform(*config.clip_level_range))
            degraded = clip(degraded, level)
            info["clip_level"] = round(level, 3)
        lower_rates = [low for low in config.bandlimit_rates if low < rate]
        if _draw(rng, config.bandlimit_probability) and lower_rates:
            low_rate = int(lower_rates[int(rng.integers(len(lower_rates)))])
            degraded = band_limit(degraded, rate, low_rate)
            info["bandlimit_rate"] = low_rate
        return degraded, target

    def _transmission(
        self, degraded: np.ndarray, rng: np.random.Generator, info: dict[str, Any]
    ) -> np.ndarray:
        config, rate = self.config, self.config.sample_rate
        methods = list(config.secondary_methods) + (["restorer"] if self.secondary_restorer else [])
        if _draw(rng, config.secondary_probability) and methods:
            method = methods[int(rng.integers(len(methods)))]
            enhancer = self.secondary_restorer if method == "restorer" else get_enhancer(method)
            degraded = np.asarray(enhancer(degraded, rate), dtype=np.float32)  # type: ignore[misc]
            info["secondary"] = method
        if _draw(rng, config.codec_probability) and config.codecs:
            kind = config.codecs[int(rng.integers(len(config.codecs)))]
            options = config.mp3_bitrates if kind == "mp3" else config.vorbis_qualities
            setting = options[int(rng.integers(len(options)))]
            peak = max(float(np.max(np.abs(degraded))), 1e-9)
            degraded = codec(degraded / peak * PEAK_LIMIT, rate, kind, setting) * peak / PEAK_LIMIT
            info["codec"] = f"{kind}:{setting}"
        if _draw(rng, config.packet_loss_probability):
            loss_rate = float(rng.uniform(*config.loss_rate_range))
            burst = float(rng.uniform(*config.burst_length_range))
            degraded, lost = packet_loss(degraded, rate, loss_rate, burst, rng, config.packet_ms)
            info["packet_loss"] = round(float(lost.mean()), 3)
        return degraded

    def __call__(self, seed: int) -> SimulatedPair:
        """The pair for ``seed`` (the same seed always gives the same pair)."""
        rng = np.random.default_rng(seed)
        clean, names = self.clean_segment(rng)
        info: dict[str, Any] = {"seed": int(seed), "speech": names}
        return self.degrade(clean, rng, info)

    def degrade(
        self, clean: np.ndarray, rng: np.random.Generator, info: dict[str, Any]
    ) -> SimulatedPair:
        """Degrade a given clean segment ``(T,)``; what was applied is added to ``info``.

        Two simulators whose configs differ only in parameter ranges (e.g. the SNR) consume
        the same random draws, so with equally seeded generators they pick the same noise
        excerpt, RIR, codec, ...: their outputs differ only in that parameter.
        """
        degraded, target = self._acoustic(clean, rng, info)
        degraded = self._transmission(degraded, rng, info)
        level = float(rng.uniform(*self.config.level_range_db))
        rms = float(np.sqrt(np.mean(degraded.astype(np.float64) ** 2))) + 1e-9
        gain = 10 ** (level / 20) / rms
        peak = float(max(np.max(np.abs(degraded)), np.max(np.abs(target)))) * gain
        gain *= min(1.0, PEAK_LIMIT / max(peak, 1e-9))
        noisy = (degraded * gain).astype(np.float32)
        return SimulatedPair(
            noisy, (target * gain).astype(np.float32), self.config.sample_rate, info
        )


def summarise_mix(infos: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Fraction of pairs that received each degradation (the mix actually used)."""
    keys = ("reverb", "noise", "clip_level", "bandlimit_rate", "secondary", "codec", "packet_loss")
    total = max(1, len(infos))
    return {key: round(sum(key in info for info in infos) / total, 3) for key in keys}
