"""Validation of the predictor during training: loss, Track-2 statistics, the best criterion."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from sqa.data.records import AudioRecord
from sqa.errors import SqaError
from sqa.predictors.data import label_matrix
from sqa.predictors.inference import PredictionSettings, predict_batches
from sqa.predictors.losses import masked_standardised_mse
from sqa.predictors.model import UniVersa

LOWER_IS_BETTER = ("mse", "loss")


def warn_skipped(record: AudioRecord, message: str) -> None:
    """Error callback of the data pipeline: a warning naming the skipped file."""
    warnings.warn(f"skipping {record.system_id}/{record.sample_id}: {message}", stacklevel=2)


def criterion_direction(criterion: str) -> bool:
    """True when a larger criterion value is better."""
    return not any(criterion.endswith(suffix) for suffix in LOWER_IS_BETTER)


def select_criterion(results: dict[str, Any], criterion: str) -> float:
    """Pick the criterion value out of a validation result."""
    if criterion == "loss":
        return float(results["loss"])
    metric, _, statistic = criterion.partition("/")
    per_metric = results["metrics"]
    if metric == "mean":
        values = [row[statistic] for row in per_metric.values() if math.isfinite(row[statistic])]
        return float(np.mean(values)) if values else math.nan
    if metric not in per_metric:
        raise SqaError(f"criterion {criterion!r}: no validation labels for {metric!r}")
    return float(per_metric[metric][statistic])


@torch.no_grad()
def validate(
    model: UniVersa,
    records: Sequence[AudioRecord],
    settings: PredictionSettings,
    weights: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Validation loss and Track-2 statistics per labelled metric.

    Returns:
        ``{"loss", "count", "metrics": {metric: {utt_mse, ..., sys_ktau}}}``.
    """
    from sqa.stats import track2_metrics

    was_training = model.training
    names = model.metric_names
    found = {r.key: s for r, s in predict_batches(model, records, settings, warn_skipped)}
    kept = [record for record in records if record.key in found]
    model.train(was_training)
    if not kept:
        return {"loss": math.nan, "count": 0, "metrics": {}}
    labels = label_matrix(kept, names)
    predictions = {
        name: torch.tensor([found[r.key][name] for r in kept], dtype=torch.float64)
        for name in names
    }
    loss, _ = masked_standardised_mse(
        predictions,
        labels,
        names,
        model.target_mean.double().cpu(),
        model.target_std.double().cpu(),
        weights,
    )
    per_metric = {}
    systems = np.array([record.system_id for record in kept], dtype=object)
    for column, name in enumerate(names):
        present = torch.isfinite(labels[:, column]).numpy()
        if present.sum() >= 2:
            per_metric[name] = track2_metrics(
                predictions[name].numpy()[present],
                labels[:, column].numpy()[present],
                list(systems[present]),
            )
    return {"loss": float(loss), "count": len(kept), "metrics": per_metric}
