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

import numpy as np

from sqa.data.records import AudioRecord, parse_float
from sqa.errors import DataFormatError, SqaError
from sqa.fileio import read_rows
from sqa.stats import TRACK2_STATISTICS, track2_metrics

STATISTICS = TRACK2_STATISTICS  # utterance/system x MSE/LCC/SRCC/KTAU, the evaluator's order
EXAMPLES = 5


SUBMISSION_SUFFIXES = (".scp", ".zip")


def _system_of(references: Sequence[AudioRecord] | None, source: str | Path) -> dict[str, str]:
    """sample id -> system id of the references (a ``mos.scp`` names samples only)."""
    if references is None:
        raise SqaError(f"{source}: a mos.scp or zip names samples only; give the references")
    from sqa.data.track2 import expected_sample_ids

    expected_sample_ids(references)
    return {record.sample_id: record.system_id for record in references}


def prediction_table(
    path: str | Path,
    references: Sequence[AudioRecord] | None = None,
    metric: str | None = None,
) -> dict[tuple[str, str], dict[str, float]]:
    """Read predictions: ``sqa predict`` output or the official ``results.jsonl`` (JSONL with a
    ``metrics`` object), CSV with metric columns, or a ``mos.scp`` / submission zip.

    Args:
        path: The predictions file.
        references: The labelled rows; needed for ``mos.scp`` (system ids come from them).
        metric: Key under which ``mos.scp`` scores are stored (default ``mos``).

    Returns:
        ``(system_id, sample_id) -> {metric: value}``.
    """
    if Path(path).suffix.lower() in SUBMISSION_SUFFIXES:
        from sqa.data.track2 import read_scores_file, summarise_problems

        system_of = _system_of(references, path)
        scores, problems = read_scores_file(path)
        if problems:
            raise DataFormatError(f"{path}: {summarise_problems(problems)}")
        return {(system_of.get(i, ""), i): {metric or "mos": v} for i, v in scores.items()}
    table: dict[tuple[str, str], dict[str, float]] = {}
    for number, row in enumerate(read_rows(path), start=1):
        where = f"{path}:{number}"
        key, metrics = _row_metrics(row, where)
        if key in table:
            raise DataFormatError(f"{where}: duplicate prediction for {key[0]}/{key[1]}")
        table[key] = {
            name: parse_float(value, f"{where}:{name}") for name, value in metrics.items()
        }
    return table


def _row_metrics(row: Mapping[str, Any], where: str) -> tuple[tuple[str, str], Mapping[str, Any]]:
    """The key and the metric mapping of one prediction row (nested or flat)."""
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
    return (str(row["system_id"]), str(row["sample_id"])), metrics


def official_predictions(
    path: str | Path, references: Sequence[AudioRecord], metric: str
) -> list[tuple[str, str, float]]:
    """Prediction rows ``(system_id, sample_id, value)`` as the official evaluator reads them:
    every row kept (duplicates too), NaN kept, a row without ``metric`` an error. A ``mos.scp``
    or submission zip gives its lines in order (system ids from the references)."""
    source = Path(path)
    if source.suffix.lower() in SUBMISSION_SUFFIXES:
        return _submission_rows(source, _system_of(references, source))
    rows = []
    for number, row in enumerate(read_rows(source), start=1):
        where = f"{source}:{number}"
        key, metrics = _row_metrics(row, where)
        if metric not in metrics:
            raise DataFormatError(f"{where}: no {metric!r} value")
        rows.append((*key, parse_float(metrics[metric], f"{where}:{metric}")))
    return rows


def _submission_rows(source: Path, system_of: Mapping[str, str]) -> list[tuple[str, str, float]]:
    """Every ``<sample_id> <score>`` line of a mos.scp or a zip's mos.scp (whitespace-split)."""
    from sqa.data.track2 import SCORES_NAME, read_scores_text, summarise_problems

    if source.suffix.lower() == ".zip":
        from sqa.data.archives import read_text_members

        texts, problems = read_text_members(source, [SCORES_NAME])
        if problems:
            raise DataFormatError(f"{source}: {summarise_problems(problems)}")
        text = texts[SCORES_NAME]
    else:
        text = read_scores_text(source)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DataFormatError(f"{source}:{number}: expected '<sample_id> <score>'")
        rows.append(
            (system_of.get(parts[0], ""), parts[0], parse_float(parts[1], f"{source}:{number}"))
        )
    return rows


def evaluate_official(
    rows: Sequence[tuple[str, str, float]], references: Sequence[AudioRecord], metric: str
) -> dict[str, Any]:
    """The official evaluator's numbers, including its edge cases (``sqa evaluate --official``).

    Each prediction row is joined with its reference (a prediction without a finite reference
    label is an error); duplicate rows count as often as they appear; a NaN prediction makes the
    utterance-level statistics NaN, while system means skip it (pandas ``mean``). Reference rows
    without a prediction are ignored.
    """
    labels = {record.key: record.metrics.get(metric, math.nan) for record in references}
    unlabelled = [key for key, value in labels.items() if not math.isfinite(value)]
    if unlabelled:  # the official loader reads item["metrics"][metric] of every reference row
        raise DataFormatError(
            f"{len(unlabelled)} reference rows have no {metric!r} label: {examples(unlabelled)}"
        )
    unmatched = [(s, i) for s, i, _ in rows if not math.isfinite(labels.get((s, i), math.nan))]
    if unmatched:
        raise DataFormatError(
            f"missing refs for {len(unmatched)} predictions: {examples(unmatched)}"
        )
    values = np.array([value for _, _, value in rows], dtype=float)
    targets = np.array([labels[(s, i)] for s, i, _ in rows], dtype=float)
    systems = [system for system, _, _ in rows]
    statistics = dict.fromkeys(TRACK2_STATISTICS, math.nan)
    if np.isfinite(values).all():
        statistics = track2_metrics(values, targets, systems)
    else:
        statistics.update(_official_system_level(values, targets, systems))
    return {
        "metrics": {metric: {"count": len(rows), "unlabelled": 0, **statistics}},
        "missing_predictions": [],
    }


def _official_system_level(
    values: np.ndarray, targets: np.ndarray, systems: Sequence[str]
) -> dict[str, float]:
    """System-level statistics of means that skip NaN predictions (all NaN if a mean is NaN)."""
    names = sorted(set(systems))
    index = np.array([names.index(system) for system in systems])
    with np.errstate(invalid="ignore"):
        means = np.array([np.nanmean(values[index == k]) if np.isfinite(values[index == k]).any()
                          else np.nan for k in range(len(names))])  # fmt: skip
    if not np.isfinite(means).all():
        return {}
    references = np.array([targets[index == k].mean() for k in range(len(names))])
    result = track2_metrics(means, references, names)
    return {key: value for key, value in result.items() if key.startswith("sys_")}


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
