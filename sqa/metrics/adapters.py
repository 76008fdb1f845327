"""Small adapters for teachers that need user-supplied local weights.

Each adapter is ``fn(estimate, reference, sample_rate, weights_path) -> dict[str, float]`` plus a
per-process model cache keyed by the weights path. Without a path the scorer raises
``MissingWeightsError("needs weights: pass --X PATH")`` before any file is processed.

Implemented here:
- ``sigmos``: the SIGMOS P.804 ONNX model (``model-sigmos_*.onnx`` of the ICASSP 2024 challenge):
  48 kHz, 20 ms square-root-Hann frames with a 10 ms hop, 960-point FFT, power-law (0.3)
  compressed magnitude and compressed real/imaginary parts as 3 input channels; output order
  col, disc, loud, noise, reverb, sig, ovrl.
- ``utmos`` / ``scoreq``: any ONNX export mapping a 16 kHz waveform (1, T) to a score (1,).
- ``spksim``: any ONNX speaker-embedding export mapping a 16 kHz waveform (1, T) to an embedding
  (1, D); the metric is the cosine similarity of estimate and reference embeddings.
"""

from __future__ import annotations

import functools

import numpy as np

from sqa.audio import resample, validate_audio
from sqa.errors import MissingDependencyError

SIGMOS_RATE = 48000
SIGMOS_FRAME = 480
SIGMOS_WINDOW = 960
SIGMOS_COMPRESSION = 0.3
SIGMOS_OUTPUTS = (
    "sigmos_col", "sigmos_disc", "sigmos_loud", "sigmos_noise", "sigmos_reverb", "sigmos_sig",
    "sigmos_ovrl",
)  # fmt: skip
WAVEFORM_RATE = 16000


@functools.cache
def onnx_session(path: str) -> object:
    """A single-threaded onnxruntime session for ``path``, created once per process."""
    try:
        import onnxruntime
    except ImportError as error:
        raise MissingDependencyError(f"this metric needs onnxruntime ({error})") from None
    from sqa.metrics.speechmos_models import ONNX_LOG_SEVERITY, quiet_onnxruntime

    quiet_onnxruntime()
    options = onnxruntime.SessionOptions()
    options.log_severity_level = ONNX_LOG_SEVERITY  # failures arrive as exceptions instead
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def prepare_signal(
    samples: np.ndarray | None, sample_rate: int, target_rate: int, source: str
) -> np.ndarray:
    """Validated float32 mono signal at ``target_rate`` (``source`` names it in errors)."""
    if samples is None:
        raise ValueError(f"no {source} signal")
    validate_audio(samples, sample_rate, min_duration=0.0, source=source)
    return resample(np.asarray(samples, dtype=np.float32), sample_rate, target_rate)


def sigmos_features(samples: np.ndarray) -> np.ndarray:
    """SIGMOS input features of a 48 kHz signal.

    Args:
        samples: Signal (T,) at 48 kHz.

    Returns:
        float32 array (1, 3, frames, 481): compressed magnitude, compressed real, compressed imag.
    """
    remainder = samples.size % SIGMOS_FRAME or SIGMOS_FRAME
    padded = np.pad(samples, (SIGMOS_WINDOW - SIGMOS_FRAME, SIGMOS_WINDOW - remainder))
    count = 1 + (padded.size - SIGMOS_WINDOW) // SIGMOS_FRAME
    indices = np.arange(SIGMOS_WINDOW)[None, :] + SIGMOS_FRAME * np.arange(count)[:, None]
    window = np.sqrt(np.hanning(SIGMOS_WINDOW + 1)[:-1])
    spectrum = np.fft.rfft(padded[indices] * window, n=SIGMOS_WINDOW).astype(np.complex64)
    parts = np.stack([spectrum.real, spectrum.imag])  # (2, frames, bins)
    power = np.maximum(np.sum(parts**2, axis=0, keepdims=True), 1e-12)
    compressed = parts * power ** ((SIGMOS_COMPRESSION - 1) / 2)
    magnitude = power ** (SIGMOS_COMPRESSION / 2)
    return np.concatenate([magnitude, compressed])[np.newaxis].astype(np.float32)


def sigmos_scores(
    estimate: np.ndarray, reference: np.ndarray | None, sample_rate: int, weights: str
) -> dict[str, float]:
    """All seven SIGMOS dimensions of one clip (reference unused)."""
    audio = prepare_signal(estimate, sample_rate, SIGMOS_RATE, "estimate")
    session = onnx_session(weights)
    features = sigmos_features(audio)
    output = session.run(None, {item.name: features for item in session.get_inputs()})[0]
    values = np.asarray(output, dtype=np.float64).reshape(-1)
    return dict(zip(SIGMOS_OUTPUTS, map(float, values[: len(SIGMOS_OUTPUTS)]), strict=True))


def _run_waveform(session: object, audio: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    output = session.run(None, {name: audio[np.newaxis].astype(np.float32)})[0]
    return np.asarray(output, dtype=np.float64).reshape(-1)


def waveform_regressor(metric: str) -> object:
    """Adapter for an ONNX export mapping a 16 kHz waveform (1, T) to a score (``utmos``...)."""

    def compute(
        estimate: np.ndarray, reference: np.ndarray | None, sample_rate: int, weights: str
    ) -> dict[str, float]:
        audio = prepare_signal(estimate, sample_rate, WAVEFORM_RATE, "estimate")
        return {metric: float(_run_waveform(onnx_session(weights), audio)[0])}

    return compute


def speaker_similarity(
    estimate: np.ndarray, reference: np.ndarray | None, sample_rate: int, weights: str
) -> dict[str, float]:
    """Cosine similarity of ONNX speaker embeddings of estimate and reference."""
    session = onnx_session(weights)
    embeddings = [
        _run_waveform(session, prepare_signal(signal, sample_rate, WAVEFORM_RATE, source))
        for signal, source in ((estimate, "estimate"), (reference, "reference"))
    ]
    norms = np.linalg.norm(embeddings[0]) * np.linalg.norm(embeddings[1])
    if norms == 0:
        return {"spksim": float("nan")}
    return {"spksim": float(np.dot(embeddings[0], embeddings[1]) / norms)}
