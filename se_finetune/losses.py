"""Losses of SQA-guided fine-tuning (paper sections II-C to II-E) and frozen critics.

* ``L_spec`` / ``L_reg``: multi-resolution log-magnitude L1 (:class:`MultiResolutionSpectralLoss`),
  against the clean target (simulated data) or the initial model's output (real data).
* ``L_score = Σ_k w_k α_k s_k`` (:func:`score_loss`) with ``α_k = -1`` for higher-is-better
  metrics and ``+1`` otherwise, taken from the metric registry.
* ``L_feat = ‖h(enhanced) − h(clean)‖₁`` on the critic's hidden vector (:func:`feature_loss`).
* ``L_rank = −log P(enhanced ≻ initial output)`` from a pairwise ranker (:func:`rank_loss`).

Critics are wrapped by :class:`FrozenCritic` / :class:`FrozenRanker`: eval mode, parameters with
``requires_grad=False`` (so no parameter gradients and no optimizer state), while gradients still
flow to their input; resampling to the critic's rate uses :func:`sqa.torch_audio.resample_torch`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from sqa.errors import SqaError
from sqa.metrics import get_metric_spec
from sqa.torch_audio import resample_torch

RESOLUTIONS_16K: tuple[tuple[int, int], ...] = ((256, 64), (512, 128), (768, 192), (1024, 256))
MAGNITUDE_FLOOR = 1e-5
CRITIC_RATE = 16000


class CriticOutput(NamedTuple):
    """Fields of the predictor's ``PredictorOutput``: scores ``{name: (B,)}``, hidden ``(B, D)``."""

    scores: dict[str, torch.Tensor]
    hidden: torch.Tensor


class MultiResolutionSpectralLoss(nn.Module):
    """Sum over STFT resolutions of the mean L1 distance between log magnitudes.

    Args:
        sample_rate: Rate of the compared signals; window sizes scale from their 16 kHz values.
        resolutions: ``(window, hop)`` pairs at 16 kHz.
        time_weight: Weight of an optional time-domain L1 term (relative to the reference's mean
            absolute level; it constrains the phase, which log magnitudes ignore).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        resolutions: Sequence[tuple[int, int]] = RESOLUTIONS_16K,
        time_weight: float = 0.0,
    ) -> None:
        super().__init__()
        scale = sample_rate / 16000
        self.resolutions = [(round(w * scale), max(1, round(h * scale))) for w, h in resolutions]
        self.time_weight = float(time_weight)

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Args: estimate, reference ``(B, T)``. Returns: scalar loss."""
        total = estimate.new_zeros(())
        for window_length, hop in self.resolutions:
            window = torch.hann_window(window_length, device=estimate.device, dtype=estimate.dtype)
            magnitudes = [
                torch.stft(x, window_length, hop, window=window, return_complex=True).abs()
                for x in (estimate, reference)
            ]
            total = total + F.l1_loss(
                torch.log(magnitudes[0] + MAGNITUDE_FLOOR),
                torch.log(magnitudes[1] + MAGNITUDE_FLOOR),
            )
        if self.time_weight:
            # Relative to the reference level, so the term's scale does not depend on loudness.
            error = (estimate - reference).abs().mean(dim=-1)
            level = reference.abs().mean(dim=-1).clamp_min(MAGNITUDE_FLOOR)
            total = total + self.time_weight * (error / level).mean()
        return total


def freeze(module: nn.Module) -> nn.Module:
    """Put a critic in eval mode and stop gradients to its parameters (not to its input)."""
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def metric_directions(names: Sequence[str]) -> dict[str, float]:
    """``α_k`` per metric: −1 for higher-is-better, +1 for lower-is-better (registry)."""
    return {name: -1.0 if get_metric_spec(name).higher_is_better else 1.0 for name in names}


def score_loss(scores: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """``L_score = mean over batch of Σ_k w_k α_k s_k``.

    Args:
        scores: Critic scores ``{metric: (B,)}`` (standardised so scales are comparable).
        weights: ``{metric: w_k}``; every key must be among the scores and in the registry.

    Raises:
        SqaError: For a weighted metric the critic does not predict.
    """
    missing = sorted(set(weights) - set(scores))
    if missing:
        raise SqaError(f"the critic does not predict {', '.join(missing)}; it has {sorted(scores)}")
    directions = metric_directions(list(weights))
    terms = [weights[name] * directions[name] * scores[name] for name in weights]
    return torch.stack(terms).sum(dim=0).mean()


def feature_loss(hidden: torch.Tensor, reference_hidden: torch.Tensor) -> torch.Tensor:
    """``L_feat``: mean absolute difference of hidden vectors ``(B, D)`` (reference detached)."""
    return F.l1_loss(hidden, reference_hidden.detach())


def rank_loss(logit: torch.Tensor) -> torch.Tensor:
    """``−log σ(logit)``, the ranker's negative log-probability that the first input is better."""
    return F.softplus(-logit).mean()


def _lengths_at(lengths: torch.Tensor | None, ratio: float) -> torch.Tensor | None:
    return None if lengths is None else torch.round(lengths.float() * ratio).long()


class FrozenCritic(nn.Module):
    """A frozen quality predictor taking audio at ``input_rate`` and passing input gradients.

    The wrapped module follows the predictor contract: ``forward(waveform (B, T), lengths)``
    returns an object with ``scores`` and ``hidden``; if it has ``standardise(scores)``, scores are
    standardised with its training statistics so metrics of different scale are comparable.

    Args:
        critic: The predictor (e.g. a ``UniVersa`` or :class:`DnsmosCritic`).
        input_rate: Rate of the audio given to :meth:`forward`.
    """

    def __init__(self, critic: nn.Module, input_rate: int) -> None:
        super().__init__()
        self.critic = freeze(critic)
        self.input_rate = int(input_rate)
        self.critic_rate = int(getattr(critic, "sample_rate", CRITIC_RATE))

    def train(self, mode: bool = True) -> FrozenCritic:
        """Stay in eval mode whatever the surrounding model does (dropout off, fixed norms)."""
        super().train(False)
        return self

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> CriticOutput:
        """Args: waveform ``(B, T)`` at ``input_rate``. Returns: scores ``(B,)`` and hidden."""
        audio = resample_torch(waveform, self.input_rate, self.critic_rate)
        output = self.critic(audio, _lengths_at(lengths, self.critic_rate / self.input_rate))
        scores = dict(output.scores)
        standardise = getattr(self.critic, "standardise", None)
        if callable(standardise):
            scores = dict(standardise(scores))
        return CriticOutput(scores, output.hidden)


class FrozenRanker(nn.Module):
    """A frozen pairwise ranker (``forward(a, b, lengths_a, lengths_b) -> .logit``) at 16 kHz."""

    def __init__(self, ranker: nn.Module, input_rate: int) -> None:
        super().__init__()
        self.ranker = freeze(ranker)
        self.input_rate = int(input_rate)
        self.ranker_rate = int(getattr(ranker, "sample_rate", CRITIC_RATE))

    def train(self, mode: bool = True) -> FrozenRanker:
        """Stay in eval mode."""
        super().train(False)
        return self

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Logit ``(B,)`` of P(first better than second); inputs ``(B, T)`` at ``input_rate``."""
        first = resample_torch(first, self.input_rate, self.ranker_rate)
        second = resample_torch(second, self.input_rate, self.ranker_rate)
        lengths = torch.full((first.shape[0],), first.shape[-1], dtype=torch.long)
        return self.ranker(first, second, lengths, lengths).logit


# DNSMOS P.835 polynomial mapping of the raw network outputs (sig, bak, ovrl), as published with
# the DNS challenge's reference scorer: score = c0 + c1 * raw + c2 * raw².
_DNSMOS_POLYNOMIAL = (
    (0.0052439, -0.39604546, 0.04602535),
    (1.22083953, 1.60915514, 1.11546468),
    (-0.08397278, -0.13166888, -0.06766283),
)
DNSMOS_KEYS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")


class DnsmosCritic(nn.Module):
    """Differentiable DNSMOS (P.835 SIG/BAK/OVRL) from the ``asem`` PyTorch port, 16 kHz.

    The network sees the whole clip at once (the reference scorer averages 9.01 s windows), so
    scores on short clips differ slightly from ``sqa score``; gradients reach the input.
    ``hidden`` is the 64-dimensional time-pooled convolutional feature before the dense layers.

    Raises:
        MissingDependencyError: If asem (or torchaudio, which it imports) is unavailable.
    """

    sample_rate = CRITIC_RATE
    metric_names = DNSMOS_KEYS

    def __init__(self) -> None:
        super().__init__()
        self.network = _load_asem_dnsmos()
        self.register_buffer("polynomial", torch.tensor(_DNSMOS_POLYNOMIAL), persistent=False)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> CriticOutput:
        """Args: waveform ``(B, T)`` at 16 kHz (T ≥ 320). Returns: DNSMOS scores and hidden."""
        network = self.network
        frames = waveform.unfold(1, 320, 160).transpose(1, 2)  # (B, 320, N)
        power = network.conv_real_stft(frames).square() + network.conv_imag_stft(frames).square()
        log_power = torch.log10(power.clamp_min(1e-12)).transpose(1, 2).unsqueeze(1)
        features = network.conv_layers(log_power)  # (B, 64, N', F')
        hidden = features.flatten(2).amax(dim=2)  # (B, 64)
        raw = network.output_layers(hidden)  # (B, 3)
        mapped = self.polynomial[0] + self.polynomial[1] * raw + self.polynomial[2] * raw**2
        return CriticOutput(
            {key: mapped[:, index] for index, key in enumerate(DNSMOS_KEYS)}, hidden
        )


def _load_asem_dnsmos() -> nn.Module:
    from sqa.compat.torchaudio_fallback import ensure_torchaudio
    from sqa.errors import MissingDependencyError

    try:
        ensure_torchaudio()
        from asem.DNSMOS import DNSMOSNet
    except (ImportError, MissingDependencyError) as error:
        raise MissingDependencyError(
            f"the differentiable DNSMOS critic needs the asem package: {error}"
        ) from None
    return DNSMOSNet()


def build_critic(spec: str | None, input_rate: int) -> FrozenCritic | None:
    """A frozen critic from ``"dnsmos"``, a checkpoint path/manifest name, or ``None``."""
    if not spec:
        return None
    if spec == "dnsmos":
        return FrozenCritic(DnsmosCritic(), input_rate)
    from sqa.checkpoint import load_model
    from sqa.predictors.model import MODEL_KIND

    critic = load_model(spec, kinds=(MODEL_KIND,), purpose="the critic (critic:)")
    return FrozenCritic(critic, input_rate)


def build_ranker(spec: str | None, input_rate: int) -> FrozenRanker | None:
    """A frozen pairwise ranker from a checkpoint path/manifest name, or ``None``."""
    if not spec:
        return None
    from rankers.loading import load_ranker

    return FrozenRanker(load_ranker(spec, "cpu", "the rank loss (ranker:)"), input_rate)


def critic_metric_weights(critic: FrozenCritic, weights: Mapping[str, float]) -> dict[str, Any]:
    """The configured metric weights, or weight 1 for every metric the critic predicts."""
    if weights:
        return dict(weights)
    names = getattr(critic.critic, "metric_names", None)
    if not names:
        raise SqaError("set metric_weights: the critic does not list its metric_names")
    return dict.fromkeys(names, 1.0)
