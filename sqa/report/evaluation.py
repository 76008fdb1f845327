"""Report of ``sqa evaluate``: predicted-vs-true scatter plots at utterance and system level.

The statistics in each plot are the ones ``sqa evaluate`` computed
(:func:`sqa.track2.evaluation.evaluate_predictions`); the system means come from
:func:`sqa.stats.system_means`. Nothing is recomputed differently here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqa.fileio import atomic_open, check_writable
from sqa.report.figures import png_bytes, prediction_scatter
from sqa.report.html import Report, Section

Pairs = dict[str, tuple[list[float], list[float], list[str]]]


def evaluation_pairs(
    predictions: Mapping[tuple[str, str], Mapping[str, float]],
    references: Sequence[Any],
    metrics: Sequence[str],
    prediction_metric: str | None = None,
) -> Pairs:
    """Per metric, (true labels, predictions, system ids) of the rows the statistics used."""
    pairs: Pairs = {}
    for record in references:
        prediction = predictions.get(record.key)
        if prediction is None:
            continue
        for name in metrics:
            label = record.metrics.get(name, math.nan)
            value = prediction.get(prediction_metric or name, math.nan)
            if math.isfinite(label) and math.isfinite(value):
                true, predicted, systems = pairs.setdefault(name, ([], [], []))
                true.append(float(label))
                predicted.append(float(value))
                systems.append(str(record.key[0]))
    return pairs


def unit_of(metric: str) -> str:
    """Axis unit of a metric: its registry range (``MOS (1–5)``-style) where known."""
    from sqa.errors import SqaError
    from sqa.metrics import get_metric_spec

    try:
        low, high = get_metric_spec(metric).value_range
    except SqaError:
        return metric
    if low is None or high is None:
        return metric
    name = "MOS" if metric == "mos" else metric
    return f"{name} ({low:g}–{high:g})"


def _statistics(results: Mapping[str, float], level: str) -> dict[str, float]:
    prefix = "utt_" if level == "utterance" else "sys_"
    return {
        key.removeprefix(prefix): float(value)
        for key, value in results.items()
        if key.startswith(prefix) and isinstance(value, int | float)
    }


def scatter_figures(pairs: Pairs, results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``<metric>_utterance`` and ``<metric>_system`` -> scatter figure."""
    from sqa.stats import system_means

    figures = {}
    for name, (true, predicted, systems) in pairs.items():
        unit = unit_of(name)
        statistics = results.get(name, {})
        figures[f"{name}_utterance"] = prediction_scatter(
            true, predicted, _statistics(statistics, "utterance"), "utterance", name, unit
        )
        _, system_predicted, system_true = system_means(predicted, true, systems)
        figures[f"{name}_system"] = prediction_scatter(
            system_true, system_predicted, _statistics(statistics, "system"), "system", name, unit
        )
    return figures


def evaluate_report(
    figures: Mapping[str, Any], results: Mapping[str, Mapping[str, Any]], missing: Sequence[Any]
) -> Report:
    """Report of ``sqa evaluate``: the scatter plots and the statistics table."""
    rows = [{"metric": name, **values} for name, values in results.items()]
    section = Section(
        "Predicted vs true",
        figures=[(png_bytes(figure), name.replace("_", " ")) for name, figure in figures.items()],
        tables=[("Track-2 statistics", rows)],
    )
    skipped = [f"{system}/{sample}: no prediction" for system, sample in missing]
    warnings = [
        f"{name}: {values['unlabelled']} reference row(s) without a finite label left out"
        for name, values in results.items()
        if values.get("unlabelled")
    ]
    return Report("sqa evaluate report", [section], skipped, warnings)


def write_plots(folder: Path, figures: Mapping[str, Any], force: bool) -> list[Path]:
    """``<folder>/<name>.png`` per figure (SHEET-style scatter plots), written atomically."""
    from sqa.fileio import check_metric_name

    folder.mkdir(parents=True, exist_ok=True)
    paths = [check_writable(folder / f"{check_metric_name(n, 'plot')}.png", force) for n in figures]
    for path, figure in zip(paths, figures.values(), strict=True):
        with atomic_open(path, "wb") as stream:
            stream.write(png_bytes(figure))
    return paths
