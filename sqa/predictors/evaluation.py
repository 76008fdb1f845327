"""Track-2 evaluation of predictions against references (used by ``sqa evaluate``, ``sqa track2``).

Definitions follow the official Track-2 evaluator: rows are matched on ``(system_id, sample_id)``;
utterance level compares all matched rows; system level compares per-system means of predictions
and references; MSE, Pearson LCC, Spearman SRCC and Kendall tau-b (scipy) at both levels
(:func:`sqa.stats.track2_metrics`). A prediction without a reference row is an error; reference rows
without a prediction are reported and left out. For multi-metric references, rows lacking a label
for a metric are left out of that metric only (and counted as ``unlabelled``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqa.data.records import AudioRecord, parse_float
from sqa.errors import DataFormatError, SqaError
from sqa.fileio import read_rows
from sqa.stats import TRACK2_KEYS, track2_metrics

STATISTICS = TRACK2_KEYS  # utterance/system x MSE/LCC/SRCC/KTAU, the evaluator's order
EXAMPLES = 5


def prediction_table(path: str | Path) -> dict[tuple[str, str], dict[str, float]]:
    """Read ``sqa predict`` output (JSONL with a ``metrics`` object, or CSV with metric columns).

    Returns:
        ``(system_id, sample_id) -> {metric: value}``.
    """
    table: dict[tuple[str, str], dict[str, float]] = {}
    for number, row in enumerate(read_rows(path), start=1):
        where = f"{path}:{number}"
        if "sample_id" not in row or "system_id" not in row:
            raise DataFormatError(f"{where}: a prediction needs sample_id and system_id")
        metrics = row.get("metrics")
        if metrics is None:
            metrics = {
                k: v
                for k, v in row.items()
                if k not in ("sample_id", "system_id", "audio_path", "path")
            }
        if not isinstance(metrics, Mapping):
            raise DataFormatError(f"{where}: 'metrics' must be an object")
        key = (str(row["system_id"]), str(row["sample_id"]))
        if key in table:
            raise DataFormatError(f"{where}: duplicate prediction for {key[0]}/{key[1]}")
        table[key] = {
            name: parse_float(value, f"{where}:{name}") for name, value in metrics.items()
        }
    return table


def examples(keys: Sequence[tuple[str, str]]) -> str:
    shown = ", ".join(f"{system}/{sample}" for system, sample in list(keys)[:EXAMPLES])
    return shown + (f" and {len(keys) - EXAMPLES} more" if len(keys) > EXAMPLES else "")


def _metric_statistics(
    name: str,
    source: str,
    predictions: Mapping[tuple[str, str], Mapping[str, float]],
    by_key: Mapping[tuple[str, str], AudioRecord],
    matched: Sequence[tuple[str, str]],
) -> dict[str, float]:
    """Statistics of one metric over the matched rows that carry its label."""
    keys = [k for k in matched if math.isfinite(by_key[k].metrics.get(name, math.nan))]
    if not keys:
        raise DataFormatError(f"no reference has a label for {name!r}")
    values = [predictions[k].get(source, math.nan) for k in keys]
    bad = [k for k, value in zip(keys, values, strict=True) if not math.isfinite(value)]
    if bad:
        raise DataFormatError(
            f"{len(bad)} predictions of {source!r} are missing or not finite: {examples(bad)}"
        )
    labels = [by_key[k].metrics[name] for k in keys]
    statistics = track2_metrics(values, labels, [k[0] for k in keys])
    return {"count": len(keys), "unlabelled": len(matched) - len(keys), **statistics}


def evaluate_predictions(
    predictions: Mapping[tuple[str, str], Mapping[str, float]],
    references: Sequence[AudioRecord],
    metrics: Sequence[str] | None = None,
    *,
    prediction_metric: str | None = None,
) -> dict[str, Any]:
    """Track-2 statistics per metric.

    Args:
        predictions: ``(system_id, sample_id) -> {metric: value}``.
        references: Reference records with labels in ``metrics``.
        metrics: Metrics to evaluate (default: every metric both sides have).
        prediction_metric: Read predictions from this key instead (one reference metric only).

    Returns:
        ``{"metrics": {name: {count, utt_mse, ..., sys_ktau}}, "missing_predictions": [keys]}``.

    Raises:
        DataFormatError: Predictions without references, or non-finite predictions.
    """
    by_key = {record.key: record for record in references}
    orphans = sorted(set(predictions) - set(by_key))
    if orphans:
        raise DataFormatError(f"{len(orphans)} predictions have no reference: {examples(orphans)}")
    missing = sorted(set(by_key) - set(predictions))
    matched = [key for key in by_key if key in predictions]
    if metrics is None:
        predicted = {name for key in matched for name in predictions[key]}
        labelled = {name for key in matched for name in by_key[key].metrics}
        metrics = sorted(predicted & labelled)
    if prediction_metric is not None and len(metrics) != 1:
        raise SqaError("--pred-metric needs exactly one --metric")
    results = {
        name: _metric_statistics(name, prediction_metric or name, predictions, by_key, matched)
        for name in metrics
    }
    return {"metrics": results, "missing_predictions": missing}
