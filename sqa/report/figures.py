"""Report figures: plain functions from data to a :class:`matplotlib.figure.Figure`.

matplotlib is imported lazily (the ``report`` extra) and only through its object API with the
Agg canvas, so no global pyplot state or display is involved. Colours come from the Okabe-Ito
palette, which stays distinguishable for the common forms of colour blindness.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sqa.compat.optional import install_hint
from sqa.errors import MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color Universal Design": black first, then the seven colours.
OKABE_ITO = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#000000",  # black
)
DPI = 100
# After the eight colours, lines repeat them with another dash pattern.
LINE_STYLES = ("-", "--", ":", "-.")


def new_figure(width: float = 7.0, height: float = 4.0) -> Figure:
    """A matplotlib figure on the Agg canvas (no pyplot), or one clear missing-extra error."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            f"reports need matplotlib; {install_hint('report', 'matplotlib')}"
        ) from None
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def ranking_with_ci(
    systems: Sequence[str],
    ranks: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    title: str = "Ranking with 95% bootstrap confidence intervals",
) -> Figure:
    """Rank of each system (1 = best) with its interval, best system on top."""
    figure = new_figure(7.0, 0.9 + 0.4 * max(len(systems), 2))
    axes = figure.add_subplot()
    positions = np.arange(len(systems))
    ranks_array = np.asarray(ranks, dtype=float)
    low_array, high_array = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    errors = np.vstack([ranks_array - low_array, high_array - ranks_array])
    axes.errorbar(
        ranks_array, positions, xerr=np.clip(errors, 0, None), fmt="o", color=OKABE_ITO[4],
        ecolor=OKABE_ITO[0], elinewidth=3, capsize=4, markersize=7,
    )  # fmt: skip
    axes.set_yticks(positions, [str(system) for system in systems])
    axes.invert_yaxis()
    axes.set_xlim(0.5, max(float(np.max(high)) if len(high) else 1.0, 1.0) + 0.5)
    axes.set_xlabel("rank (1 = best)")
    axes.set_ylabel("system")
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    return figure


def win_rate_heatmap(
    systems: Sequence[str], matrix: np.ndarray, title: str = "Pairwise win rate (row vs column)"
) -> Figure:
    """Heat map of the win rate (%) of each row system against each column system."""
    size = max(4.0, 1.2 + 0.55 * len(systems))
    figure = new_figure(size + 1.2, size)
    axes = figure.add_subplot()
    percent = 100.0 * np.asarray(matrix, dtype=float)
    np.fill_diagonal(percent, np.nan)
    image = axes.imshow(percent, cmap="cividis", vmin=0.0, vmax=100.0)
    labels = [str(system) for system in systems]
    axes.set_xticks(np.arange(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(np.arange(len(labels)), labels)
    for row in range(len(labels)):
        for column in range(len(labels)):
            value = percent[row, column]
            if math.isfinite(value):
                colour = "black" if value > 55 else "white"
                axes.text(column, row, f"{value:.0f}", ha="center", va="center", color=colour)
    axes.set_xlabel("opponent system")
    axes.set_ylabel("system")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="win rate (%)")
    return figure


def prediction_scatter(
    true: Sequence[float],
    predicted: Sequence[float],
    statistics: Mapping[str, float],
    level: str,
    metric: str,
    unit: str = "MOS (1–5)",
) -> Figure:
    """Predicted-vs-true scatter (SHEET style) with the statistics in a text box."""
    figure = new_figure(5.0, 5.0)
    axes = figure.add_subplot()
    true_array = np.asarray(true, dtype=float)
    predicted_array = np.asarray(predicted, dtype=float)
    size = 40 if level == "system" else 12
    axes.scatter(true_array, predicted_array, s=size, color=OKABE_ITO[4], alpha=0.7, linewidths=0)
    finite = np.concatenate([true_array, predicted_array])
    finite = finite[np.isfinite(finite)]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        axes.plot([low, high], [low, high], linestyle="--", color=OKABE_ITO[7], linewidth=1)
    text = "\n".join(f"{name.upper()} = {value:.3f}" for name, value in statistics.items())
    axes.text(
        0.03, 0.97, text, transform=axes.transAxes, va="top", family="monospace",
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": OKABE_ITO[1]},
    )  # fmt: skip
    axes.set_xlabel(f"true {unit}")
    axes.set_ylabel(f"predicted {unit}")
    axes.set_title(f"{metric}: predicted vs true ({level} level, n = {true_array.size})")
    axes.grid(alpha=0.3)
    return figure


def metric_bars(
    systems: Sequence[str],
    values: Mapping[str, Sequence[float]],
    title: str = "Per-metric scores per system (normalised, 1 = best)",
    ylabel: str = "normalised score (0–1, 1 = best)",
) -> Figure:
    """Grouped bars: one group per metric, one bar per system."""
    metrics = list(values)
    figure = new_figure(max(6.0, 1.5 + 0.9 * len(metrics) * max(len(systems), 1) / 3), 4.2)
    axes = figure.add_subplot()
    width = 0.8 / max(len(systems), 1)
    positions = np.arange(len(metrics))
    for index, system in enumerate(systems):
        heights = [float(values[metric][index]) for metric in metrics]
        axes.bar(
            positions + (index - (len(systems) - 1) / 2) * width, heights, width,
            label=str(system), color=OKABE_ITO[index % len(OKABE_ITO)],
        )  # fmt: skip
    axes.set_xticks(positions, metrics, rotation=30, ha="right")
    axes.set_xlabel("metric")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(title="system", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.grid(axis="y", alpha=0.3)
    return figure


def training_curves(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str = "Training curves",
    ylabel: str = "loss (MSE, standardised)",
) -> Figure:
    """One line per logged quantity: name -> (steps, values)."""
    figure = new_figure(9.0, max(3.5, 0.6 + 0.2 * len(series)))
    axes = figure.add_subplot()
    for index, (name, (steps, values)) in enumerate(series.items()):
        axes.plot(
            steps, values, marker="o" if len(steps) < 30 else None, markersize=3,
            label=name, color=OKABE_ITO[index % len(OKABE_ITO)],
            linestyle=LINE_STYLES[index // len(OKABE_ITO) % len(LINE_STYLES)],
        )  # fmt: skip
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if series:
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.grid(alpha=0.3)
    return figure


def figure_kinds() -> dict[str, Any]:
    """Name -> figure function (for documentation and tests)."""
    return {
        "ranking": ranking_with_ci,
        "win_rate": win_rate_heatmap,
        "scatter": prediction_scatter,
        "metric_bars": metric_bars,
        "training": training_curves,
    }
