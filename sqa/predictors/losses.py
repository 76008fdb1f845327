"""Training loss of the predictor: per-metric standardised MSE over labelled entries only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def label_statistics(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-metric mean and standard deviation over finite labels.

    Args:
        labels: ``(N, K)`` with NaN for missing labels.

    Returns:
        ``(K,)`` means (0 where a metric has no label) and ``(K,)`` standard deviations (1 where
        fewer than two labels or zero spread), as float64.
    """
    values = labels.to(torch.float64)
    present = torch.isfinite(values)
    count = present.sum(dim=0)
    filled = torch.where(present, values, torch.zeros_like(values))
    mean = filled.sum(dim=0) / count.clamp_min(1)
    squared = torch.where(present, (values - mean) ** 2, torch.zeros_like(values))
    std = torch.sqrt(squared.sum(dim=0) / (count - 1).clamp_min(1))
    mean = torch.where(count > 0, mean, torch.zeros_like(mean))
    std = torch.where((count > 1) & (std > 1e-8), std, torch.ones_like(std))
    return mean, std


def masked_standardised_mse(
    predictions: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    metric_names: Sequence[str],
    mean: torch.Tensor,
    std: torch.Tensor,
    weights: Mapping[str, float] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Average over the metrics present in the batch of their standardised MSE.

    For metric ``k``: ``mse_k = mean over labelled items of ((pred - y) / std_k)^2`` (the mean
    cancels in the difference but is kept in the signature for symmetry with
    :meth:`UniVersa.standardise`). The loss is ``sum_k w_k mse_k / sum_k w_k`` over the metrics
    with at least one finite label. A zero-weight term over every prediction keeps all heads in the
    autograd graph, so the loss is finite (zero) when no metric is labelled and distributed data
    parallel training never sees an unused parameter.

    Args:
        predictions: metric -> ``(B,)`` predictions.
        labels: ``(B, K)`` labels in ``metric_names`` order, NaN = missing.
        metric_names: Names of the label columns.
        mean: ``(K,)`` training means.
        std: ``(K,)`` training standard deviations.
        weights: Optional metric -> weight (default 1).

    Returns:
        The scalar loss and metric -> unweighted standardised MSE for the metrics present.
    """
    first = next(iter(predictions.values()))
    total = 0.0 * sum(value.sum() for value in predictions.values())
    weight_sum = first.new_zeros(())
    details: dict[str, float] = {}
    for column, name in enumerate(metric_names):
        if name not in predictions:
            continue
        target = labels[:, column].to(first.device, first.dtype)
        present = torch.isfinite(target)
        if not bool(present.any()):
            continue
        scale = std[column].to(first.device, first.dtype)
        difference = (predictions[name][present] - target[present]) / scale
        metric_loss = (difference**2).mean()
        weight = float((weights or {}).get(name, 1.0))
        total = total + weight * metric_loss
        weight_sum = weight_sum + weight
        details[name] = float(metric_loss.detach())
    if not details:
        return total, details
    return total / weight_sum.clamp_min(1e-12), details
