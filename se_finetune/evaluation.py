"""Evaluation of a restorer with the teacher metrics of ``sqa.metrics``."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from sqa.metrics.scorer import FileScore, MetricScorer
from sqa.simulation.simulate import SimulatedPair

DNSMOS_WINDOW = 144160  # 9.01 s at 16 kHz, the reference scorer's input length


@functools.lru_cache(maxsize=1)
def _dnsmos_critic() -> nn.Module:
    from se_finetune.losses import DnsmosCritic

    return DnsmosCritic().eval()


class _TorchDnsmos:
    """DNSMOS through the asem PyTorch port (one 9.01 s window, like ``dnsmos_mode="fast"``).

    The ONNX teacher is far slower on a loaded CPU; the port matches it closely, and evaluating
    with it keeps periodic evaluation cheap.
    """

    def __init__(self, metric_names: Sequence[str]) -> None:
        self.metric_names = list(metric_names)

    def score(self, estimate: np.ndarray, sample_rate: int, reference: object = None) -> object:
        from sqa.audio import resample

        audio = resample(np.asarray(estimate, dtype=np.float32), sample_rate, 16000)
        repeats = int(np.ceil(DNSMOS_WINDOW / max(audio.shape[0], 1)))
        window = np.tile(audio, repeats)[:DNSMOS_WINDOW]
        with torch.no_grad():
            scores = _dnsmos_critic()(torch.from_numpy(window)[None]).scores
        return FileScore({name: float(scores[name][0]) for name in self.metric_names}, {})


class _Combined:
    """Teacher metrics from ``sqa.metrics`` plus DNSMOS from the PyTorch port."""

    def __init__(self, metric_names: tuple[str, ...]) -> None:
        self.metric_names = list(metric_names)
        dnsmos = [
            name for name in metric_names if name in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
        ]
        others = [name for name in metric_names if name not in dnsmos]
        self.parts = ([MetricScorer(others)] if others else []) + (
            [_TorchDnsmos(dnsmos)] if dnsmos else []
        )

    def score(
        self, estimate: np.ndarray, sample_rate: int, reference: np.ndarray | None
    ) -> FileScore:
        values: dict[str, float] = {}
        for part in self.parts:
            values.update(part.score(estimate, sample_rate, reference).values)
        return FileScore(values, {})


@functools.lru_cache(maxsize=8)
def teacher_scorer(metric_names: tuple[str, ...]) -> _Combined:
    # Building a scorer loads models; reuse it across periodic evaluations.
    return _Combined(metric_names)


def enhance_arrays(
    model: nn.Module, signals: Sequence[np.ndarray], sample_rate: int, batch_size: int = 8
) -> list[np.ndarray]:
    """Run a restorer on equal- or unequal-length signals (one at a time when lengths differ).

    Returns:
        Restored float32 signals, each the length of its input.
    """
    outputs: list[np.ndarray] = []
    lengths = {signal.shape[0] for signal in signals}
    step = batch_size if len(lengths) == 1 else 1
    with torch.no_grad():
        for start in range(0, len(signals), step):
            batch = torch.from_numpy(np.stack(signals[start : start + step]).astype(np.float32))
            restored = model(batch, sample_rate)
            outputs.extend(restored.numpy().astype(np.float32))
    return outputs


def _mean_scores(
    scorer: _Combined,
    estimates: Sequence[np.ndarray],
    references: Sequence[np.ndarray | None],
    sample_rate: int,
) -> dict[str, float]:
    values: dict[str, list[float]] = {name: [] for name in scorer.metric_names}
    for estimate, reference in zip(estimates, references, strict=True):
        result = scorer.score(estimate, sample_rate, reference)
        for name, value in result.values.items():
            values[name].append(value)
    # NaN (a teacher failing on a clip) is skipped; all-NaN stays NaN.
    return {
        name: float(np.nanmean(items)) if np.isfinite(items).any() else float("nan")
        for name, items in values.items()
    }


def evaluate_restorer(
    model: nn.Module,
    pairs: Sequence[SimulatedPair],
    metric_names: Sequence[str],
    *,
    real_clips: Sequence[np.ndarray] = (),
    real_metric_names: Sequence[str] = (),
    sample_rate: int,
) -> dict[str, float]:
    """Mean teacher metrics of a restorer on held-out simulated pairs and real clips.

    Returns:
        ``{metric: mean}`` for the simulated pairs and ``{"real_" + metric: mean}`` for the real
        clips (non-intrusive metrics only).
    """
    results: dict[str, float] = {}
    if pairs and metric_names:
        estimates = enhance_arrays(model, [pair.noisy for pair in pairs], sample_rate)
        results.update(
            _mean_scores(
                teacher_scorer(tuple(metric_names)),
                estimates,
                [p.target for p in pairs],
                sample_rate,
            )
        )
    if real_clips and real_metric_names:
        estimates = enhance_arrays(model, list(real_clips), sample_rate)
        real = _mean_scores(
            teacher_scorer(tuple(real_metric_names)),
            estimates,
            [None] * len(estimates),
            sample_rate,
        )
        results.update({f"real_{name}": value for name, value in real.items()})
    return results


def evaluate_inputs(
    pairs: Sequence[SimulatedPair], metric_names: Sequence[str], sample_rate: int
) -> dict[str, float]:
    """The same metrics on the unprocessed noisy inputs (the table's "noisy" row)."""
    return _mean_scores(
        teacher_scorer(tuple(metric_names)),
        [pair.noisy for pair in pairs],
        [pair.target for pair in pairs],
        sample_rate,
    )
