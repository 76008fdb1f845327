"""Uni-VERSA-Ext-style multi-metric speech-quality predictor.

Architecture (Wang et al., "Improving Speech Enhancement with Multi-Metric Supervision from Learned
Quality Assessment", Sec. III-B, and the URGENT 2026 Track-2 baseline):

front end (SSL / log-mel / Distill-MOS, frame features ``(B, F, D_in)``)
-> per encoder: Linear(D_in, d) + LayerNorm (+ optional sinusoidal positions)
-> Transformer encoder with key-padding masks -> masked mean pooling over valid frames
-> one linear output per metric -> range activation from the metric registry.

Two trunks, chosen by :class:`TrunkConfig`:

* ``"paper"`` (default): three parallel encoders (4 layers, 4 heads, d=256, FFN 1024, dropout 0.1),
  each serving one group of metrics (:data:`DEFAULT_METRIC_GROUPS`):
  ``signal`` = reference-based signal fidelity (pesq, pesqc2, estoi, sdr, lsd, mcd, si_snr);
  ``perceptual`` = non-intrusive quality / naturalness (mos, utmos, distill_mos, nisqa_mos, scoreq,
  dnsmos_*, sigmos_*); ``content`` = content & speaker (sbert, lps, spksim). A metric outside the
  table joins ``signal`` if the registry says it needs a reference, else ``perceptual``; groups
  without metrics get no encoder.
* ``"baseline"``: the Track-2 baseline, one shared encoder (6 layers, d=768, 8 heads, FFN 2048).

The forward returns the scores and ``h``, the pooled representation feeding the output layer (the
concatenation of the group encoders' pooled vectors), and is differentiable with respect to the
waveform. Training statistics (per-metric mean / std) live in buffers for :meth:`standardise`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import nn

from sqa.errors import SqaError
from sqa.metrics import TRACK2_KEYS, get_metric_spec
from sqa.predictors.distillmos_frontend import DistillMosConfig, DistillMosFrontEnd
from sqa.predictors.frontends import (
    LogMelConfig,
    LogMelFrontEnd,
    SslFrontEnd,
    SslFrontEndConfig,
    lengths_to_mask,
)
from sqa.predictors.trunk import TRUNK_KINDS, MaskedEncoder, RangeActivation, TrunkConfig

MODEL_KIND = "universa"
FRONT_ENDS = ("ssl", "mel", "distillmos")
GROUP_NAMES = ("signal", "perceptual", "content")
DEFAULT_METRIC_GROUPS: dict[str, str] = {
    **dict.fromkeys(("pesq", "pesqc2", "estoi", "sdr", "lsd", "mcd", "si_snr"), "signal"),
    **dict.fromkeys(("sbert", "lps", "spksim"), "content"),
}  # every other metric: "perceptual" (or "signal" if it needs a reference)


@dataclass(frozen=True)
class UniVersaConfig:
    """Predictor configuration (what a checkpoint stores).

    Attributes:
        front_end: ``"ssl"``, ``"mel"`` or ``"distillmos"``.
        ssl, mel, distillmos: Settings of each front end (only the chosen one is used).
        trunk: Encoder trunk.
        metrics: Output heads, in order. Default: the 22 URGENT 2026 Track-2 keys.
        metric_ranges: ``(name, low, high)`` overrides of the registry ranges (``None`` = open);
            filled in for every metric when the model is built, so checkpoints are self-contained.
        metric_directions: ``(name, higher_is_better)``, filled in the same way.
        metric_groups: ``(name, group)`` overrides of :data:`DEFAULT_METRIC_GROUPS` (paper trunk).
        sample_rate: Input rate of the waveform (all front ends work at 16 kHz).
        overall_metric: The head that stands for overall quality (what ``sqa track2 submit``
            uses by default); empty: ``mos`` when the model has it.
    """

    front_end: str = "ssl"
    ssl: SslFrontEndConfig = field(default_factory=SslFrontEndConfig)
    mel: LogMelConfig = field(default_factory=LogMelConfig)
    distillmos: DistillMosConfig = field(default_factory=DistillMosConfig)
    trunk: TrunkConfig = field(default_factory=TrunkConfig)
    metrics: tuple[str, ...] = TRACK2_KEYS
    metric_ranges: tuple[tuple[str, float | None, float | None], ...] = ()
    metric_directions: tuple[tuple[str, bool], ...] = ()
    metric_groups: tuple[tuple[str, str], ...] = ()
    sample_rate: int = 16000
    overall_metric: str = ""

    def __post_init__(self) -> None:
        # Configs read back from JSON/YAML carry lists where tuples are declared.
        for name in ("metrics", "metric_ranges", "metric_directions", "metric_groups"):
            value = getattr(self, name)
            converted = tuple(tuple(item) if isinstance(item, list) else item for item in value)
            object.__setattr__(self, name, converted)
        if self.front_end not in FRONT_ENDS:
            raise SqaError(f"unknown front end {self.front_end!r}; use one of {FRONT_ENDS}")
        if self.trunk.kind not in TRUNK_KINDS:
            raise SqaError(f"unknown trunk {self.trunk.kind!r}; use one of {TRUNK_KINDS}")
        if not self.metrics or len(set(self.metrics)) != len(self.metrics):
            raise SqaError("the predictor needs a non-empty list of distinct metric names")
        if self.overall_metric and self.overall_metric not in self.metrics:
            raise SqaError(f"overall_metric {self.overall_metric!r} is not one of the metrics")


@dataclass
class PredictorOutput:
    """What :meth:`UniVersa.forward` returns.

    Attributes:
        scores: metric name -> ``(B,)`` predicted values within the metric's range.
        hidden: ``(B, D)`` pooled representation feeding the output layer (``h`` of the paper).
    """

    scores: dict[str, torch.Tensor]
    hidden: torch.Tensor


def _resolve_metric_table(config: UniVersaConfig) -> UniVersaConfig:
    """Fill ranges and directions for every metric from the registry (overrides win)."""
    ranges = {name: (low, high) for name, low, high in config.metric_ranges}
    directions = dict(config.metric_directions)
    for name in config.metrics:
        if name in ranges and name in directions:
            continue
        try:
            spec = get_metric_spec(name)
        except SqaError:
            raise SqaError(
                f"metric {name!r} is not in the registry: give its range and direction in "
                "metric_ranges / metric_directions"
            ) from None
        ranges.setdefault(name, spec.value_range)
        directions.setdefault(name, spec.higher_is_better)
    return replace(
        config,
        metric_ranges=tuple((name, *ranges[name]) for name in config.metrics),
        metric_directions=tuple((name, bool(directions[name])) for name in config.metrics),
    )


def metric_group(name: str, overrides: dict[str, str]) -> str:
    """Group of a metric in the paper trunk (see the module docstring)."""
    if name in overrides:
        return overrides[name]
    if name in DEFAULT_METRIC_GROUPS:
        return DEFAULT_METRIC_GROUPS[name]
    try:
        return "signal" if get_metric_spec(name).needs_reference else "perceptual"
    except SqaError:
        return "perceptual"


def build_front_end(config: UniVersaConfig) -> nn.Module:
    """Instantiate the configured front end."""
    if config.front_end == "ssl":
        return SslFrontEnd(config.ssl)
    if config.front_end == "mel":
        return LogMelFrontEnd(config.mel, config.sample_rate)
    return DistillMosFrontEnd(config.distillmos)


class UniVersa(nn.Module):
    """Multi-metric predictor; see the module docstring."""

    def __init__(self, config: UniVersaConfig) -> None:
        super().__init__()
        config = _resolve_metric_table(config)
        self.front_end = build_front_end(config)
        if isinstance(self.front_end, SslFrontEnd):
            config = replace(config, ssl=self.front_end.config)
        self.config = config
        self.metric_names: list[str] = list(config.metrics)
        self.sample_rate = config.sample_rate
        self.directions = dict(config.metric_directions)
        self.metric_index = {name: index for index, name in enumerate(self.metric_names)}
        self.group_members = self._assign_groups(config)
        self.encoders = nn.ModuleDict(
            {
                group: MaskedEncoder(self.front_end.output_dim, config.trunk)
                for group in self.group_members
            }
        )
        self.heads = nn.ModuleDict(
            {
                group: nn.Linear(config.trunk.d_model, len(members))
                for group, members in self.group_members.items()
            }
        )
        self.activations = nn.ModuleDict(
            {name: RangeActivation(low, high) for name, low, high in config.metric_ranges}
        )
        self.hidden_dim = config.trunk.d_model * len(self.encoders)
        self.register_buffer("target_mean", torch.zeros(len(self.metric_names)))
        self.register_buffer("target_std", torch.ones(len(self.metric_names)))

    @staticmethod
    def _assign_groups(config: UniVersaConfig) -> dict[str, list[str]]:
        if config.trunk.kind == "baseline":
            return {"shared": list(config.metrics)}
        overrides = dict(config.metric_groups)
        members: dict[str, list[str]] = {}
        for name in config.metrics:
            members.setdefault(metric_group(name, overrides), []).append(name)
        order = [group for group in GROUP_NAMES if group in members]
        order += sorted(set(members) - set(GROUP_NAMES))
        return {group: members[group] for group in order}

    def forward(
        self, waveform: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> PredictorOutput:
        """Predict every metric.

        Args:
            waveform: ``(B, T)`` at :attr:`sample_rate`, zero-padded after each item's end.
            lengths: ``(B,)`` valid samples per item (``None``: all ``T``).

        Returns:
            :class:`PredictorOutput` with ``scores[name]`` ``(B,)`` and ``hidden`` ``(B, D)``.
        """
        if waveform.dim() != 2:
            raise SqaError(
                f"expected a (batch, samples) waveform, got shape {tuple(waveform.shape)}"
            )
        if lengths is None:
            lengths = torch.full((waveform.shape[0],), waveform.shape[1], device=waveform.device)
        lengths = lengths.to(device=waveform.device, dtype=torch.long)
        features, frame_lengths = self.front_end(waveform, lengths)
        valid = lengths_to_mask(frame_lengths.to(features.device), features.shape[1])
        pooled, scores = [], {}
        for group, members in self.group_members.items():
            vector = self.encoders[group](features, valid)
            pooled.append(vector)
            logits = self.heads[group](vector)
            for column, name in enumerate(members):
                scores[name] = self._activate(name, logits[:, column])
        ordered = {name: scores[name] for name in self.metric_names}
        return PredictorOutput(scores=ordered, hidden=torch.cat(pooled, dim=-1))

    def _activate(self, name: str, logit: torch.Tensor) -> torch.Tensor:
        """Range activation; open-ended metrics get their logit in standardised units first.

        For metrics with an open end (e.g. SDR in dB) the head predicts ``z`` and the value before
        the activation is ``mean + std * z`` with the training statistics, so a freshly initialised
        head starts near the label distribution whatever the metric's scale.
        """
        activation = self.activations[name]
        if not activation.two_sided:
            index = self.metric_index[name]
            logit = self.target_mean[index] + self.target_std[index] * logit
        return activation(logit)

    def higher_is_better(self, name: str) -> bool:
        """Direction of a predicted metric (from the registry or the config)."""
        return self.directions[name]

    def set_target_statistics(self, mean: dict[str, float], std: dict[str, float]) -> None:
        """Store training-label statistics used by :meth:`standardise` (missing: 0 / 1)."""
        for index, name in enumerate(self.metric_names):
            scale = float(std.get(name, 1.0))
            self.target_mean[index] = float(mean.get(name, 0.0))
            self.target_std[index] = scale if math.isfinite(scale) and scale > 1e-8 else 1.0

    def standardise(self, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``(score - mean) / std`` per metric with the training statistics.

        Args:
            scores: metric name -> tensor of any shape (labels or predictions).

        Returns:
            The same keys, standardised.
        """
        index = self.metric_index
        return {
            name: (value - self.target_mean[index[name]]) / self.target_std[index[name]]
            for name, value in scores.items()
        }

    def count_parameters(self) -> dict[str, int]:
        """Total and trainable parameter counts."""
        total = sum(parameter.numel() for parameter in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"total": total, "trainable": trainable}


def config_summary(config: UniVersaConfig) -> dict[str, Any]:
    """A short, JSON-friendly description of a config (model cards, README.yaml)."""
    return {
        item.name: getattr(config, item.name)
        for item in fields(config)
        if item.name in ("front_end", "sample_rate")
    } | {"trunk": config.trunk.kind, "metrics": list(config.metrics)}


def _register() -> None:
    from sqa.checkpoint import register_model
    from sqa.checkpoint.importing import register_importer
    from sqa.export.registry import register_exporter

    register_model(MODEL_KIND, UniVersaConfig, UniVersa, role="multi-metric predictor")
    register_exporter(MODEL_KIND, "sqa.export.predictor:predictor_graphs")
    register_importer(
        "universa-ext",
        "sqa.predictors.official_import:import_universa_ext",
        "URGENT 2026 Track-2 Uni-VERSA-Ext model.pt + config.yaml + local SSL folder",
    )


_register()
