"""DNSMOS (P.835 + P.808) and PLCMOS with the ONNX models shipped inside ``speechmos``.

The models are loaded from the installed package folder (no download) into onnxruntime sessions
that are created once per process and reused for every file. DNSMOS follows the reference
procedure of ``speechmos.dnsmos``: the clip is tiled to at least 9.01 s, 9.01 s windows slide with a
1 s hop, each window is scored and the scores are averaged. ``mode="fast"`` scores only the first
window (about 6x faster for 4 s clips, typically within 0.1 MOS). PLCMOS averages 15 random
"rater embeddings"; here they come from a generator seeded per call, so results are deterministic
and independent of the order of files or the number of workers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sqa.audio import resample, validate_audio
from sqa.errors import MissingDependencyError
from sqa.metrics.features import mel_spectrogram, power_to_db

SAMPLE_RATE = 16000
WINDOW_SECONDS = 9.01
DNSMOS_MODES = ("full", "fast")
# onnxruntime's log levels: 0 verbose ... 3 error, 4 fatal. Run failures raise Python exceptions
# that the scorer reports per file, so only fatal messages may still be printed.
ONNX_LOG_SEVERITY = 4
# Polynomials mapping raw P.835 outputs to MOS (non-personalised DNSMOS), highest power first.
_P835_CALIBRATION = {
    "sig": (-0.08397278, 1.22083953, 0.0052439),
    "bak": (-0.13166888, 1.60915514, -0.39604546),
    "ovrl": (-0.06766283, 1.11546468, 0.04602535),
}


def _package_folder() -> Path:
    try:
        import speechmos
    except ImportError as error:
        raise MissingDependencyError(
            f"DNSMOS/PLCMOS need the speechmos package ({error})"
        ) from None
    return Path(speechmos.__file__).parent


def quiet_onnxruntime() -> None:
    """Stop onnxruntime's process-wide logger from printing (before any session is made)."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(ONNX_LOG_SEVERITY)


def _session(path: Path, threads: int) -> object:
    import onnxruntime

    quiet_onnxruntime()
    options = onnxruntime.SessionOptions()
    # Errors still reach us as exceptions (turned into per-file reasons); without this the C++
    # logger also prints raw "[E:onnxruntime:...]" lines on stderr.
    options.log_severity_level = ONNX_LOG_SEVERITY
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass
class DnsmosModel:
    """The two DNSMOS ONNX sessions (P.835 sig/bak/ovrl and P.808)."""

    p835: object
    p808: object

    @classmethod
    def load(cls, threads: int = 1) -> DnsmosModel:
        """Create the sessions from the speechmos package folder."""
        folder = _package_folder() / "dnsmos_models"
        return cls(
            _session(folder / "sig_bak_ovr.onnx", threads),
            _session(folder / "model_v8.onnx", threads),
        )

    def score_window(self, window: np.ndarray) -> np.ndarray:
        """Score one 9.01 s window (144160,) -> [sig, bak, ovrl, p808]."""
        # P.808 input: log-mel of the window without its last 10 ms, scaled as speechmos does.
        mel = mel_spectrogram(window[:-160], SAMPLE_RATE, n_fft=321, hop=160, n_mels=120)
        mel = ((power_to_db(mel, float(mel.max())) + 40) / 40).T.astype(np.float32)
        p808 = self.p808.run(None, {"input_1": mel[np.newaxis]})[0][0][0]
        raw = self.p835.run(None, {"input_1": window.astype(np.float32)[np.newaxis]})[0][0]
        calibrated = [
            np.poly1d(_P835_CALIBRATION[key])(value)
            for key, value in zip(("sig", "bak", "ovrl"), raw, strict=True)
        ]
        return np.array([*calibrated, p808], dtype=np.float64)

    def __call__(self, samples: np.ndarray, mode: str = "full") -> dict[str, float]:
        """Score a 16 kHz clip (T,) -> dnsmos_sig/bak/ovrl/p808."""
        window_length = int(WINDOW_SECONDS * SAMPLE_RATE)
        audio = np.asarray(samples, dtype=np.float32)
        while audio.size < window_length:
            audio = np.concatenate([audio, audio])
        hops = int(np.floor(audio.size / SAMPLE_RATE) - WINDOW_SECONDS) + 1
        if mode == "fast":
            hops = 1
        windows = [
            audio[hop * SAMPLE_RATE : hop * SAMPLE_RATE + window_length] for hop in range(hops)
        ]
        scores = np.mean(
            [self.score_window(window) for window in windows if window.size == window_length],
            axis=0,
        )
        return dict(
            zip(
                ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"),
                map(float, scores),
                strict=True,
            )
        )


@dataclass
class PlcmosModel:
    """The PLCMOS v2 ONNX session plus the speechmos feature extractor."""

    extractor: object
    session: object
    rounds: int = 15

    @classmethod
    def load(cls, threads: int = 1) -> PlcmosModel:
        """Create the session from the speechmos package folder."""
        folder = _package_folder() / "plcmos_models"
        from speechmos.plcmos import PLCMOS

        # The extractor's own session is never run; ours is thread-limited.
        extractor = PLCMOS.__new__(PLCMOS)
        return cls(extractor, _session(folder / "plcmos_v2.onnx", threads))

    def __call__(self, samples: np.ndarray, seed: int = 0) -> float:
        """Score a 16 kHz clip (T,) with ``rounds`` rater embeddings drawn from ``seed``."""
        features = self.extractor.stft_transform(np.asarray(samples, dtype=np.float64))
        features = np.float32(features)[np.newaxis, np.newaxis]
        generator = np.random.default_rng(seed)
        total = 0.0
        for _ in range(self.rounds):
            embedding = generator.standard_normal((1, 64)).astype(np.float32)
            output = self.session.run(None, {"degraded_audio": features, "rater_embed": embedding})
            total += float(np.asarray(output[0]).reshape(-1)[0])
        return total / self.rounds


@functools.cache
def dnsmos_model(threads: int = 1) -> DnsmosModel:
    """The per-process DNSMOS model (loaded on first use)."""
    return DnsmosModel.load(threads)


@functools.cache
def plcmos_model(threads: int = 1) -> PlcmosModel:
    """The per-process PLCMOS model (loaded on first use)."""
    return PlcmosModel.load(threads)


def _prepare(estimate: np.ndarray, sample_rate: int) -> np.ndarray:
    validate_audio(estimate, sample_rate, min_duration=0.0, source="estimate")
    audio = resample(np.asarray(estimate, dtype=np.float32), sample_rate, SAMPLE_RATE)
    # The models were trained on audio in [-1, 1]; speechmos refuses anything else.
    return np.clip(audio, -1.0, 1.0)


def dnsmos_scores(
    estimate: np.ndarray, *, sample_rate: int, mode: str = "full"
) -> dict[str, float]:
    """DNSMOS P.835 and P.808 scores of one clip.

    Args:
        estimate: Signal (T,) at ``sample_rate`` (resampled to 16 kHz).
        sample_rate: Its rate in Hz.
        mode: ``"full"`` (reference sliding windows) or ``"fast"`` (first window only).

    Returns:
        ``{"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"}`` MOS values.
    """
    if mode not in DNSMOS_MODES:
        raise ValueError(f"unknown DNSMOS mode {mode!r}; use one of {DNSMOS_MODES}")
    return dnsmos_model()(_prepare(estimate, sample_rate), mode)


def plcmos_score(estimate: np.ndarray, *, sample_rate: int, seed: int = 0) -> float:
    """PLCMOS v2 of one clip, deterministic for a given ``seed``.

    Args:
        estimate: Signal (T,) at ``sample_rate`` (resampled to 16 kHz).
        sample_rate: Its rate in Hz.
        seed: Seed of the rater embeddings.

    Returns:
        PLCMOS MOS value.
    """
    return plcmos_model()(_prepare(estimate, sample_rate), seed)
