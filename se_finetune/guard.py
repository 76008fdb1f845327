"""Reward-hacking guard: detect a restorer collapsing into non-speech output the critic likes.

With ``L_score`` alone the SQA-guided paper (Fig. 2, Table V line 8) sees the restorer learn
non-speech signals that the frozen predictor rates highly. Neither the critic's scores nor the
loss reveal it, so the guard watches two critic-independent measures on a fixed set of guard
clips, comparing the current output with the *initial* model's output on the same input:

* consistency: median SI-SNR (dB) between current and initial outputs;
* speech presence: median correlation of their 20 ms frame log-energy envelopes (speech has
  syllabic energy modulation that a collapsed, stationary output loses).

It fires when either falls below its threshold for ``patience`` consecutive checks. The default
10 dB assumes fine-tuning at a small learning rate, which keeps outputs close to the initial ones
(legitimate rows of the evidence run stayed above 20 dB; critic-only training fell to 2-3 dB).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sqa.errors import SqaError

EPSILON = 1e-8


class RewardHackingError(SqaError):
    """Training stopped because the reward-hacking guard detected a collapse."""


@dataclass(frozen=True)
class GuardConfig:
    """Thresholds of :class:`RewardHackingGuard`.

    Attributes:
        enabled: Whether the guard runs.
        min_consistency_db: Lowest acceptable median SI-SNR of current vs initial output.
        min_envelope_correlation: Lowest acceptable median envelope correlation.
        patience: Consecutive failing checks before it fires.
        action: ``"rollback"`` (restore the last good weights, then stop) or ``"stop"``.
    """

    enabled: bool = True
    min_consistency_db: float = 10.0
    min_envelope_correlation: float = 0.5
    patience: int = 2
    action: str = "rollback"


@dataclass(frozen=True)
class GuardVerdict:
    """Result of one check: measures, whether the guard fired, and a message."""

    step: int
    consistency_db: float
    envelope_correlation: float
    failing: bool
    fired: bool
    message: str


def si_snr_db(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SNR ``(B,)`` in dB of ``estimate`` against ``reference`` ``(B, T)``."""
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    reference = reference - reference.mean(dim=-1, keepdim=True)
    scale = (estimate * reference).sum(-1, keepdim=True) / (
        reference.pow(2).sum(-1, keepdim=True) + EPSILON
    )
    projection = scale * reference
    residual = estimate - projection
    return 10 * torch.log10(
        (projection.pow(2).sum(-1) + EPSILON) / (residual.pow(2).sum(-1) + EPSILON)
    )


def envelope_correlation(
    estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int, frame_ms: float = 20.0
) -> torch.Tensor:
    """Pearson correlation ``(B,)`` of 20 ms frame log-energies of two ``(B, T)`` signals."""
    size = max(1, int(sample_rate * frame_ms / 1000))
    envelopes = []
    for signal in (estimate, reference):
        frames = signal[:, : signal.shape[1] // size * size].reshape(signal.shape[0], -1, size)
        energy = torch.log10(frames.pow(2).mean(-1) + EPSILON)
        envelopes.append(energy - energy.mean(dim=1, keepdim=True))
    numerator = (envelopes[0] * envelopes[1]).sum(1)
    denominator = envelopes[0].norm(dim=1) * envelopes[1].norm(dim=1) + EPSILON
    return numerator / denominator


class RewardHackingGuard:
    """Checks a restorer's outputs on guard clips against the initial model's outputs.

    Args:
        config: Thresholds.
        initial_output: The initial restorer's output on the guard clips ``(B, T)``.
        sample_rate: Their rate in Hz.
    """

    def __init__(self, config: GuardConfig, initial_output: torch.Tensor, sample_rate: int) -> None:
        if config.action not in ("rollback", "stop"):
            raise SqaError(f"guard action must be 'rollback' or 'stop', got {config.action!r}")
        self.config = config
        self.initial_output = initial_output.detach()
        self.sample_rate = sample_rate
        self.failures = 0

    def check(self, output: torch.Tensor, step: int) -> GuardVerdict:
        """Measure ``output`` ``(B, T)`` (same clips) and decide whether the guard fires."""
        output = output.detach()
        consistency = float(si_snr_db(output, self.initial_output).median())
        correlation = float(
            envelope_correlation(output, self.initial_output, self.sample_rate).median()
        )
        failing = self.config.enabled and (
            consistency < self.config.min_consistency_db
            or correlation < self.config.min_envelope_correlation
        )
        self.failures = self.failures + 1 if failing else 0
        fired = failing and self.failures >= self.config.patience
        message = (
            f"reward-hacking guard fired at step {step}: the output no longer resembles the "
            f"initial model's output (SI-SNR {consistency:.1f} dB, threshold "
            f"{self.config.min_consistency_db:g} dB; envelope correlation {correlation:.2f}, "
            f"threshold {self.config.min_envelope_correlation:g}). This is the collapse of "
            "critic-only training (non-speech output rated highly, cf. the paper's Fig. 2) or a "
            "divergence; add L_spec/L_feat or L_reg, or lower the learning rate / score weight."
            if fired
            else ""
        )
        return GuardVerdict(step, consistency, correlation, failing, fired, message)
