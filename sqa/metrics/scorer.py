"""Compute many metrics on one file at a time: backends, per-process model reuse, NaN on failure.

A *backend* is one computation that yields one or more registry keys (DNSMOS yields four, SIGMOS
seven). :class:`MetricScorer` picks the backends needed for the requested keys, checks up front that
required weights were given, and then scores files: a failing backend gives NaN for its keys plus a
reason, never 0.0 and never an exception. A backend whose package cannot be imported (an
``ImportError``, e.g. ``distillmos`` not installed) is *unavailable*: NaN for its keys on every
file, with a reason that names the package to install, while the other metrics go on;
:attr:`MetricScorer.unavailable` lists them so that the caller can say so once. Models live in
per-process caches, so a worker process loads each model once and reuses it for every file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from sqa.errors import AudioError, CheckpointError, MissingWeightsError, SqaError
from sqa.metrics import adapters, speech_content
from sqa.metrics.registry import get_metric_spec

ComputeFunction = Callable[..., dict[str, float]]


@dataclass(frozen=True)
class ScoringOptions:
    """Options shared by all backends.

    Attributes:
        dnsmos_mode: ``"full"`` (reference sliding windows) or ``"fast"`` (one window).
        plcmos_seed: Seed of the PLCMOS rater embeddings.
        weights: Weights option name (e.g. ``"--sigmos-weights"``) -> local path.
    """

    dnsmos_mode: str = "full"
    plcmos_seed: int = 0
    weights: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricBackend:
    """One computation producing ``outputs`` (registry keys) for a file.

    Whether it needs a reference, which weights option it reads and which extra installs its
    package are facts of the registry (:class:`sqa.metrics.registry.MetricSpec` of its outputs),
    read from there rather than repeated here.
    """

    name: str
    outputs: tuple[str, ...]
    compute: ComputeFunction
    # A backend that reads the file's transcript gets it as the keyword ``text`` (None: absent);
    # with a transcript it does not need the reference signal.
    uses_text: bool = False

    @property
    def needs_reference(self) -> bool:
        """Whether the outputs need a clean reference."""
        return get_metric_spec(self.outputs[0]).needs_reference

    @property
    def weights_option(self) -> str | None:
        """The command-line option that supplies user weights, or ``None``."""
        return get_metric_spec(self.outputs[0]).needs_weights

    @property
    def extra(self) -> str:
        """The package extra that installs what the computation imports."""
        return get_metric_spec(self.outputs[0]).extra


def _single(name: str, module: str, function: str) -> ComputeFunction:
    """Wrap ``module.function(estimate, reference, *, sample_rate)`` as a backend."""

    def compute(
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        options: ScoringOptions,
    ) -> dict[str, float]:
        import importlib

        metric = getattr(importlib.import_module(module), function)
        return {name: metric(estimate, reference, sample_rate=sample_rate)}

    return compute


def _dnsmos(
    estimate: np.ndarray, reference: np.ndarray | None, sample_rate: int, options: ScoringOptions
) -> dict[str, float]:
    from sqa.metrics.speechmos_models import dnsmos_scores

    return dnsmos_scores(estimate, sample_rate=sample_rate, mode=options.dnsmos_mode)


def _plcmos(
    estimate: np.ndarray, reference: np.ndarray | None, sample_rate: int, options: ScoringOptions
) -> dict[str, float]:
    from sqa.metrics.speechmos_models import plcmos_score

    return {"plcmos": plcmos_score(estimate, sample_rate=sample_rate, seed=options.plcmos_seed)}


def _distill_mos(
    estimate: np.ndarray, reference: np.ndarray | None, sample_rate: int, options: ScoringOptions
) -> dict[str, float]:
    from sqa.metrics.torch_models import distill_mos_score

    return {"distill_mos": distill_mos_score(estimate, sample_rate=sample_rate)}


def _asr(
    estimate: np.ndarray,
    reference: np.ndarray | None,
    sample_rate: int,
    options: ScoringOptions,
    text: str | None = None,
) -> dict[str, float]:
    from sqa.metrics.asr import word_scores

    return word_scores(estimate, reference, sample_rate, text)


def _nisqa(
    estimate: np.ndarray, reference: np.ndarray | None, sample_rate: int, weights: str
) -> dict[str, float]:
    from sqa.metrics.nisqa import nisqa_scores

    return nisqa_scores(estimate, sample_rate=sample_rate, weights=weights)


def _weighted(function: Callable[..., dict[str, float]], key: str) -> ComputeFunction:
    """Pass the user weights of ``key``'s option (from the registry) as the fourth argument."""
    option = get_metric_spec(key).needs_weights or ""

    def compute(
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        options: ScoringOptions,
    ) -> dict[str, float]:
        return function(estimate, reference, sample_rate, options.weights[option])

    return compute


_SIGNAL = "sqa.metrics.signal"
_PERCEPTUAL = "sqa.metrics.perceptual"
_NISQA_KEYS = ("nisqa_mos", "nisqa_noi", "nisqa_dis", "nisqa_col", "nisqa_loud")

BACKENDS: tuple[MetricBackend, ...] = (
    MetricBackend("pesq", ("pesq",), _single("pesq", _PERCEPTUAL, "pesq_score")),
    MetricBackend("estoi", ("estoi",), _single("estoi", _PERCEPTUAL, "estoi_score")),
    MetricBackend("sdr", ("sdr",), _single("sdr", _SIGNAL, "sdr")),
    MetricBackend("si_snr", ("si_snr",), _single("si_snr", _SIGNAL, "si_snr")),
    MetricBackend("lsd", ("lsd",), _single("lsd", _SIGNAL, "lsd")),
    MetricBackend("mcd", ("mcd",), _single("mcd", _PERCEPTUAL, "mcd_score")),
    MetricBackend("dnsmos", ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"), _dnsmos),
    MetricBackend("plcmos", ("plcmos",), _plcmos),
    MetricBackend("distill_mos", ("distill_mos",), _distill_mos),
    MetricBackend("asr", ("wacc", "wer"), _asr, uses_text=True),
    MetricBackend("nisqa", _NISQA_KEYS, _weighted(_nisqa, "nisqa_mos")),
    MetricBackend(
        "sigmos",
        adapters.SIGMOS_OUTPUTS,
        _weighted(adapters.sigmos_scores, adapters.SIGMOS_OUTPUTS[0]),
    ),
    *[
        MetricBackend(key, (key,), _weighted(adapters.waveform_regressor(key), key))
        for key in ("utmos", "scoreq")
    ],
    MetricBackend("spksim", ("spksim",), _weighted(adapters.speaker_similarity, "spksim")),
    *[
        MetricBackend(key, (key,), _weighted(function, key))
        for key, function in (
            ("sbert", speech_content.speech_bert_score),
            ("lps", speech_content.phoneme_similarity),
            ("cer", speech_content.character_error_rate),
        )
    ],
)
TORCH_BACKENDS = frozenset({"distill_mos", "nisqa", "sbert", "lps", "cer"})
BACKEND_BY_OUTPUT: dict[str, MetricBackend] = {
    output: backend for backend in BACKENDS for output in backend.outputs
}


def backends_for(metric_names: list[str], options: ScoringOptions) -> list[MetricBackend]:
    """Backends needed for ``metric_names``, checking weights before any file is processed.

    Raises:
        SqaError: For a key that is a label or corpus-level score (not computable per file).
        MissingWeightsError: When a backend's weights option was not given.
    """
    chosen: dict[str, MetricBackend] = {}
    for name in metric_names:
        spec = get_metric_spec(name)
        backend = BACKEND_BY_OUTPUT.get(name)
        if backend is None:
            raise SqaError(f"{name} cannot be computed per file ({spec.description})")
        if backend.weights_option and not options.weights.get(backend.weights_option):
            raise MissingWeightsError(f"{name} needs weights: pass {backend.weights_option} PATH")
        chosen[backend.name] = backend
    return list(chosen.values())


def unavailable_reason(backend: MetricBackend, error: ImportError) -> str:
    """One line saying that ``backend`` cannot run and which package to install.

    Args:
        backend: The backend whose import failed.
        error: The failure (a ``ModuleNotFoundError`` names the missing module).

    Returns:
        E.g. ``distill_mos unavailable (NaN): needs the Python package 'distillmos', which is not
        installed; install it with: pip install "sqa-suite[metrics]" (or: pip install distillmos)``.
    """
    from sqa.compat.optional import install_hint, pip_name

    package = None
    if isinstance(error, ModuleNotFoundError) and error.name:
        package = pip_name(error.name)
        detail = f"needs the Python package {package!r}, which is not installed"
    else:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    reason = f"{', '.join(backend.outputs)} unavailable (NaN): {detail}"
    if "pip install" not in reason:
        reason = f"{reason}; {install_hint(backend.extra, package)}"
    return reason


def _has_text(backend: MetricBackend, text: str | None) -> bool:
    return backend.uses_text and text is not None


@dataclass
class FileScore:
    """Metric values of one file plus the reasons for any NaN."""

    values: dict[str, float]
    errors: dict[str, str]


class MetricScorer:
    """Scores files on a fixed set of metrics, accumulating per-backend wall time."""

    def __init__(self, metric_names: list[str], options: ScoringOptions | None = None) -> None:
        self.metric_names = list(metric_names)
        self.options = options or ScoringOptions()
        self.backends = backends_for(self.metric_names, self.options)
        self.seconds: dict[str, float] = dict.fromkeys((b.name for b in self.backends), 0.0)
        # CPU time too: on a shared machine wall time mostly measures the other processes.
        self.cpu_seconds: dict[str, float] = dict.fromkeys(self.seconds, 0.0)
        # Backend name -> why it cannot run here (a package failed to import); filled lazily.
        self.unavailable: dict[str, str] = {}

    @property
    def uses_torch(self) -> bool:
        """Whether any selected backend runs a torch model."""
        return any(backend.name in TORCH_BACKENDS for backend in self.backends)

    @property
    def needs_reference(self) -> bool:
        """Whether any selected metric uses the reference."""
        return any(backend.needs_reference for backend in self.backends)

    def score(
        self,
        estimate: np.ndarray,
        sample_rate: int,
        reference: np.ndarray | None = None,
        text: str | None = None,
    ) -> FileScore:
        """Compute every selected metric on one file.

        Args:
            estimate: Signal (T,).
            sample_rate: Rate of ``estimate`` and ``reference`` in Hz.
            reference: Clean reference (T',) at the same rate, or ``None``.
            text: Transcript of the file for the metrics that read one (``wacc``/``wer``).

        Returns:
            Values for every selected key (NaN on failure) and the failure reasons.
        """
        values: dict[str, float] = {}
        errors: dict[str, str] = {}
        for backend in self.backends:
            started, started_cpu = time.perf_counter(), time.process_time()
            if backend.name in self.unavailable:
                produced, reason = {}, self.unavailable[backend.name]
            elif backend.needs_reference and reference is None and not _has_text(backend, text):
                produced, reason = {}, "no reference for this file"
            else:
                produced, reason = self._run(backend, estimate, sample_rate, reference, text)
            self.seconds[backend.name] += time.perf_counter() - started
            self.cpu_seconds[backend.name] += time.process_time() - started_cpu
            for key in backend.outputs:
                value = produced.get(key, float("nan"))
                values[key] = float(value) if np.isfinite(value) else float("nan")
                if not np.isfinite(value):
                    errors[key] = reason or "non-finite result"
        return FileScore(
            {key: values[key] for key in self.metric_names},
            {key: reason for key, reason in errors.items() if key in self.metric_names},
        )

    def _run(
        self,
        backend: MetricBackend,
        estimate: np.ndarray,
        sample_rate: int,
        reference: np.ndarray | None,
        text: str | None = None,
    ) -> tuple[dict[str, float], str | None]:
        extra = {"text": text} if backend.uses_text else {}
        try:
            return backend.compute(estimate, reference, sample_rate, self.options, **extra), None
        except (MissingWeightsError, CheckpointError):
            # Setup problems, not properties of this file: stop the job with a clear message.
            raise
        except ImportError as error:  # includes MissingDependencyError
            # A missing teacher package: this backend is NaN from now on, the others carry on.
            self.unavailable[backend.name] = unavailable_reason(backend, error)
            return {}, self.unavailable[backend.name]
        except AudioError as error:
            return {}, describe_error(error)
        except Exception as error:  # a teacher failing on one file must not stop the job
            return {}, f"{backend.name} failed on this file: {describe_error(error)}"


REASON_LIMIT = 300


def describe_error(error: Exception) -> str:
    """A one-line reason for a user: ours keep their type name, foreign ones only their message.

    Our :class:`~sqa.errors.SqaError` subclasses are named after what is wrong with the file
    (``TooShortAudioError: x.wav: audio is 0.020 s long...``). A foreign exception's class name
    (``AxisError``, ``RuntimeException``) means nothing to a user, so only its first message line
    is kept, cut to :data:`REASON_LIMIT` characters (onnxruntime messages can be very long).
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if isinstance(error, SqaError):
        return f"{type(error).__name__}: {lines[0] if lines else 'no details'}"
    if not lines:
        return "an internal error in the metric's implementation, without a message"
    message = lines[0]
    return message if len(message) <= REASON_LIMIT else message[: REASON_LIMIT - 3] + "..."


def compute_metric(
    name: str,
    estimate: np.ndarray,
    reference: np.ndarray | None = None,
    *,
    sample_rate: int,
    options: ScoringOptions | None = None,
) -> float:
    """Compute one registry metric on one signal; NaN when it is undefined for this input.

    Args:
        name: Registry key, e.g. ``"pesq"``.
        estimate: Signal (T,).
        reference: Clean reference (T',) at the same rate (reference metrics only).
        sample_rate: Rate of the signals in Hz.
        options: Backend options (DNSMOS mode, PLCMOS seed, weights paths).

    Returns:
        The metric value, or NaN for silent/degenerate input or a missing reference.
    """
    return MetricScorer([name], options).score(estimate, sample_rate, reference).values[name]
