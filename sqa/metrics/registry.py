"""Specifications of every metric the suite knows: direction, range, rate, what it needs.

The registry is plain data so that the predictor, the rankers and the fine-tuning code can ask for a
metric's direction or range (``get_metric_spec("pesq").higher_is_better``) without importing any of
the heavy metric implementations. Keys follow the URGENT 2026 Track-2 label names where one exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqa.errors import SqaError


@dataclass(frozen=True)
class MetricSpec:
    """What a metric is and what it needs.

    Attributes:
        name: Registry key (the Track-2 key where one exists).
        higher_is_better: Direction used for ranking and preference pairs.
        value_range: (low, high) bounds of valid values; ``None`` for an open end.
        sample_rate: Native rate the implementation resamples to (``None``: any rate / not
            computable here).
        needs_reference: Whether a clean reference signal is required.
        needs_weights: Name of the command-line option that supplies user weights, or ``None``.
        extra: pyproject extra that provides it: ``"core"`` (base install), ``"metrics"``
            (``pip install "sqa-suite[metrics]"``, which includes ``distillmos``), ``"ssl"`` or
            ``"asr"`` (PocketSphinx);
            ``"label-only"`` for human labels or keys not computable here; ``"corpus"`` for
            corpus-level scores computed after the per-file metrics.
        description: One line for ``sqa score --list-metrics`` and the docs.
    """

    name: str
    higher_is_better: bool
    value_range: tuple[float | None, float | None]
    sample_rate: int | None
    needs_reference: bool
    needs_weights: str | None
    extra: str
    description: str

    @property
    def computable_offline(self) -> bool:
        """True when the metric works out of the box (no user weights, not a label)."""
        return self.needs_weights is None and self.extra not in ("label-only", "corpus")


def _spec(
    name: str,
    *,
    higher_is_better: bool,
    value_range: tuple[float | None, float | None],
    sample_rate: int | None,
    reference: bool = False,
    weights: str | None = None,
    extra: str = "core",
    description: str = "",
) -> MetricSpec:
    return MetricSpec(
        name, higher_is_better, value_range, sample_rate, reference, weights, extra, description
    )


_MOS = (1.0, 5.0)
_SIGMOS_DIMENSIONS = {
    "sigmos_col": "coloration",
    "sigmos_disc": "discontinuity",
    "sigmos_loud": "loudness",
    "sigmos_noise": "noisiness",
    "sigmos_reverb": "reverberation",
    "sigmos_sig": "signal quality",
    "sigmos_ovrl": "overall quality",
}
_NISQA_DIMENSIONS = {
    "nisqa_noi": "noisiness",
    "nisqa_dis": "discontinuity",
    "nisqa_col": "coloration",
    "nisqa_loud": "loudness",
}

_SPECS: list[MetricSpec] = [
    # Intrusive (reference-based) signal metrics.
    _spec(
        "pesq",
        higher_is_better=True,
        value_range=(-0.5, 4.644),
        sample_rate=16000,
        reference=True,
        extra="metrics",
        description="PESQ P.862.2 wideband at 16 kHz (narrowband P.862.1 for 8 kHz input)",
    ),
    _spec(
        "pesqc2",
        higher_is_better=True,
        value_range=(-0.5, 4.644),
        sample_rate=16000,
        reference=True,
        extra="label-only",
        description="PESQ with Corrigendum 2 level alignment (Track-2 label; not computed here)",
    ),
    _spec(
        "estoi",
        higher_is_better=True,
        value_range=(-1.0, 1.0),
        sample_rate=10000,
        reference=True,
        extra="metrics",
        description="extended short-time objective intelligibility (pystoi)",
    ),
    _spec(
        "sdr",
        higher_is_better=True,
        value_range=(-50.0, 50.0),
        sample_rate=None,
        reference=True,
        description="BSS-eval style SDR in dB (projection on the reference), clamped to +-50 dB",
    ),
    _spec(
        "si_snr",
        higher_is_better=True,
        value_range=(None, None),
        sample_rate=None,
        reference=True,
        description="scale-invariant SNR in dB",
    ),
    _spec(
        "lsd",
        higher_is_better=False,
        value_range=(0.0, None),
        sample_rate=None,
        reference=True,
        description="log-spectral distance as the URGENT scripts define it (32/16 ms, p=2)",
    ),
    _spec(
        "mcd",
        higher_is_better=False,
        value_range=(0.0, None),
        sample_rate=None,
        reference=True,
        extra="metrics",
        description=(
            "mel-cepstral distortion in dB, URGENT definition (native rate, LS gain, SPTK mcep "
            "with c0, FastDTW)"
        ),
    ),
    # Non-intrusive neural metrics shipped with installed packages.
    _spec(
        "dnsmos_sig",
        higher_is_better=True,
        value_range=_MOS,
        sample_rate=16000,
        extra="metrics",
        description="DNSMOS P.835 signal quality (speechmos ONNX)",
    ),
    _spec(
        "dnsmos_bak",
        higher_is_better=True,
        value_range=_MOS,
        sample_rate=16000,
        extra="metrics",
        description="DNSMOS P.835 background noise quality (speechmos ONNX)",
    ),
    _spec(
        "dnsmos_ovrl",
        higher_is_better=True,
        value_range=_MOS,
        sample_rate=16000,
        extra="metrics",
        description="DNSMOS P.835 overall quality (speechmos ONNX)",
    ),
    _spec(
        "dnsmos_p808",
        higher_is_better=True,
        value_range=_MOS,
        sample_rate=16000,
        extra="metrics",
        description="DNSMOS P.808 MOS (speechmos ONNX)",
    ),
    _spec(
        "plcmos",
        higher_is_better=True,
        value_range=_MOS,
        sample_rate=16000,
        extra="metrics",
        description="PLCMOS v2 packet-loss-concealment MOS (speechmos ONNX, seeded)",
    ),
    _spec(
        "distill_mos",
        higher_is_better=True,
        value_range=_MOS,
        sample_rate=16000,
        extra="metrics",
        description="Distill-MOS (distillmos package weights)",
    ),
    _spec(
        "nisqa_mos",
        higher_is_better=True,
        value_range=_MOS,
        sample_rate=48000,
        weights="--nisqa-weights",
        extra="core",
        description="NISQA v2 overall MOS (user weights file)",
    ),
    *[
        _spec(
            name,
            higher_is_better=True,
            value_range=_MOS,
            sample_rate=48000,
            weights="--nisqa-weights",
            extra="core",
            description=f"NISQA v2 {what} dimension (user weights file)",
        )
        for name, what in _NISQA_DIMENSIONS.items()
    ],
    # Metrics needing user-supplied weights.
    _spec(
        "utmos",
        higher_is_better=True,
        value_range=_MOS,
        sample_rate=16000,
        weights="--utmos-weights",
        extra="metrics",
        description="UTMOS naturalness MOS (user ONNX export: waveform (1, T) -> score)",
    ),
    *[
        _spec(
            name,
            higher_is_better=True,
            value_range=_MOS,
            sample_rate=48000,
            weights="--sigmos-weights",
            extra="metrics",
            description=f"SIGMOS P.804 {what} (user ONNX model)",
        )
        for name, what in _SIGMOS_DIMENSIONS.items()
    ],
    _spec(
        "scoreq",
        higher_is_better=True,
        value_range=_MOS,
        sample_rate=16000,
        weights="--scoreq-weights",
        extra="metrics",
        description="SCOREQ natural-speech MOS, no-reference mode (user ONNX export)",
    ),
    _spec(
        "sbert",
        higher_is_better=True,
        value_range=(None, 1.0),
        sample_rate=16000,
        reference=True,
        weights="--sbert-weights",
        extra="ssl",
        description="SpeechBERTScore (user HuBERT-style weights)",
    ),
    _spec(
        "lps",
        higher_is_better=True,
        value_range=(None, 1.0),
        sample_rate=16000,
        reference=True,
        weights="--lps-weights",
        extra="ssl",
        description="Levenshtein phoneme similarity (user phoneme ASR)",
    ),
    _spec(
        "spksim",
        higher_is_better=True,
        value_range=(-1.0, 1.0),
        sample_rate=16000,
        reference=True,
        weights="--spksim-weights",
        extra="metrics",
        description="speaker similarity: cosine of speaker embeddings (user ONNX)",
    ),
    _spec(
        "cer",
        higher_is_better=False,
        value_range=(0.0, None),
        sample_rate=16000,
        reference=True,
        weights="--cer-weights",
        extra="ssl",
        description="character error rate of an ASR transcript",
    ),
    # Offline PocketSphinx recogniser (sqa.metrics.asr): the target transcript is --text when
    # given, else the recogniser's transcript of the reference audio (hence "reference" here).
    _spec(
        "wacc",
        higher_is_better=True,
        value_range=(None, 1.0),
        sample_rate=16000,
        reference=True,
        extra="asr",
        description="word accuracy 1 - WER of a PocketSphinx (en-us) transcript vs --text or "
        "the reference's transcript (weaker ASR than the challenges')",
    ),
    _spec(
        "wer",
        higher_is_better=False,
        value_range=(0.0, None),
        sample_rate=16000,
        reference=True,
        extra="asr",
        description="word error rate of a PocketSphinx (en-us) transcript vs --text or the "
        "reference's transcript",
    ),
    # Labels and corpus-level scores.
    _spec(
        "mos",
        higher_is_better=True,
        value_range=_MOS,
        sample_rate=None,
        extra="label-only",
        description="human mean opinion score (Track-2 label)",
    ),
    _spec(
        "rank_score",
        higher_is_better=True,
        value_range=(0.0, 1.0),
        sample_rate=None,
        extra="corpus",
        description="utterance-level URGENT-style rank score among versions of one source",
    ),
]

METRIC_SPECS: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}

TRACK2_KEYS: tuple[str, ...] = (
    "distill_mos", "dnsmos_ovrl", "estoi", "lps", "lsd", "mcd", "mos", "nisqa_mos", "pesqc2",
    "pesq", "sbert", "scoreq", "sdr", "sigmos_col", "sigmos_disc", "sigmos_loud", "sigmos_noise",
    "sigmos_ovrl", "sigmos_reverb", "sigmos_sig", "spksim", "utmos",
)  # fmt: skip

# ``--metrics all-offline``: everything computable out of the box without user weights.
OFFLINE_METRICS: tuple[str, ...] = (
    "pesq", "estoi", "sdr", "si_snr", "lsd", "mcd", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl",
    "dnsmos_p808", "plcmos", "distill_mos",
)  # fmt: skip

METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "all-offline": OFFLINE_METRICS,
    "intrusive": ("pesq", "estoi", "sdr", "si_snr", "lsd", "mcd"),
    "dnsmos": ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"),
    "nisqa": ("nisqa_mos", *_NISQA_DIMENSIONS),
    "sigmos": tuple(_SIGMOS_DIMENSIONS),
    "asr": ("wacc", "wer"),
}


def get_metric_spec(name: str) -> MetricSpec:
    """Look up a metric by its registry key.

    Args:
        name: Registry key such as ``"pesq"`` or ``"dnsmos_ovrl"``.

    Returns:
        The metric's specification.

    Raises:
        SqaError: If the name is unknown (the message lists the known names).
    """
    try:
        return METRIC_SPECS[name]
    except KeyError:
        known = ", ".join(sorted(METRIC_SPECS))
        raise SqaError(f"unknown metric {name!r}; known metrics: {known}") from None


def expand_metric_names(text: str | list[str]) -> list[str]:
    """Expand a comma-separated metric list with group names into registry keys.

    Args:
        text: ``"pesq,estoi"``, ``"all-offline"``, ``"dnsmos,sdr"`` or a list of such items.

    Returns:
        Unique registry keys in first-seen order.

    Raises:
        SqaError: For an unknown metric or group name.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    names: dict[str, None] = {}
    for item in (part.strip() for part in items):
        if not item:
            continue
        if item in METRIC_GROUPS:
            names.update(dict.fromkeys(METRIC_GROUPS[item]))
        else:
            names[get_metric_spec(item).name] = None
    if not names:
        raise SqaError("no metrics selected")
    return list(names)
