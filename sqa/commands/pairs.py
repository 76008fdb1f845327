"""``sqa pairs``: unanimous multi-metric preference pairs (GenSR-Pref criterion).

For every two versions of the same source recording in a score table, a preference is emitted
only when **all** chosen metrics agree: the chosen file beats the rejected one on every metric by
more than that metric's margin (direction from the metric registry). A NaN on either side means no
pair. Each output row holds both files and, under ``metrics``, the per-metric differences
``chosen - rejected`` (so a negative value for a lower-is-better metric such as ``lsd``).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sqa.commands.options import add_path_argument
from sqa.data.records import listed_path
from sqa.errors import DataFormatError, SqaError
from sqa.fileio import check_writable, write_rows
from sqa.metrics.registry import expand_metric_names, get_metric_spec


@dataclass
class PairReport:
    """Counts of the pair search."""

    candidates: int = 0
    unanimous: int = 0
    with_nan: int = 0

    def describe(self) -> str:
        """One line for stderr."""
        share = 100.0 * self.unanimous / self.candidates if self.candidates else 0.0
        return (
            f"{self.unanimous} of {self.candidates} candidate pairs are unanimous ({share:.1f}%); "
            f"{self.with_nan} skipped for a missing value"
        )


def parse_margins(text: str | None, metric_names: Sequence[str]) -> dict[str, float]:
    """Parse ``"pesq=0.1,estoi=0.02"`` (or one number for every metric) into metric -> margin."""
    margins = dict.fromkeys(metric_names, 0.0)
    if not text:
        return margins
    try:
        if "=" not in text:
            return dict.fromkeys(metric_names, float(text))
        for item in text.split(","):
            name, value = item.split("=")
            if name.strip() not in margins:
                raise SqaError(f"--margins names {name.strip()!r}, which is not in --metrics")
            margins[name.strip()] = float(value)
    except ValueError:
        raise SqaError(f"--margins expects NAME=VALUE,... or one number, got {text!r}") from None
    if any(value < 0 for value in margins.values()):
        raise SqaError("--margins must not be negative")
    return margins


def _side(row: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {
        f"{prefix}_system_id": row["system_id"],
        f"{prefix}_sample_id": row["sample_id"],
        f"{prefix}_path": row.get("audio_path", ""),
    }


def unanimous_pairs(
    rows: Sequence[Mapping[str, Any]],
    metric_names: Sequence[str],
    margins: Mapping[str, float] | None = None,
) -> tuple[list[dict[str, Any]], PairReport]:
    """All unanimous preference pairs among versions of the same source.

    Args:
        rows: Score rows with ``system_id``, ``sample_id``, ``metrics`` and a source id in
            ``utterance_id`` (``sample_id`` when absent, as in the folder layout).
        metric_names: Registry keys that must all agree.
        margins: Metric -> minimum improvement (default 0: strictly better).

    Returns:
        The pair rows and the counts.
    """
    margins = margins or {}
    signs = np.array([1.0 if get_metric_spec(n).higher_is_better else -1.0 for n in metric_names])
    thresholds = np.array([margins.get(name, 0.0) for name in metric_names])
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row.get("utterance_id") or row["sample_id"]), []).append(row)
    pairs: list[dict[str, Any]] = []
    report = PairReport()
    for source, members in groups.items():
        for first, second in itertools.combinations(members, 2):
            report.candidates += 1
            difference = _values(first, metric_names) - _values(second, metric_names)
            if np.isnan(difference).any():
                report.with_nan += 1
                continue
            if np.all(difference * signs > thresholds):
                chosen, rejected, delta = first, second, difference
            elif np.all(-difference * signs > thresholds):
                chosen, rejected, delta = second, first, -difference
            else:
                continue
            report.unanimous += 1
            pairs.append(
                {
                    "utterance_id": source,
                    **_side(chosen, "chosen"),
                    **_side(rejected, "rejected"),
                    "metrics": dict(zip(metric_names, map(float, delta), strict=True)),
                }
            )
    return pairs, report


def _values(row: Mapping[str, Any], metric_names: Sequence[str]) -> np.ndarray:
    """The row's values of ``metric_names`` (NaN where missing)."""
    return np.array([float(row["metrics"].get(name, np.nan)) for name in metric_names])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sqa pairs``."""
    parser = argparse.ArgumentParser(
        prog="sqa pairs",
        description="Preference pairs on which all chosen metrics agree (GenSR-Pref).",
    )
    parser.add_argument("--scores", required=True, help="output of sqa score (.jsonl/.csv/dir)")
    parser.add_argument("--metrics", required=True, help="comma list of metrics that must agree")
    parser.add_argument("--margins", help="NAME=VALUE,... minimum improvements (or one number)")
    parser.add_argument("--output", "-o", required=True, help="pairs table (.jsonl or .csv)")
    parser.add_argument("--force", action="store_true", help="overwrite the output")
    add_path_argument(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    """Unanimous multi-metric preference pairs from score tables."""
    from sqa.metrics.outputs import read_scores

    arguments = build_parser().parse_args(list(argv))
    names = expand_metric_names(arguments.metrics)
    margins = parse_margins(arguments.margins, names)
    check_writable(arguments.output, arguments.force)
    rows = read_scores(arguments.scores)
    if not rows:
        raise DataFormatError(f"{arguments.scores}: no score rows")
    absent = [name for name in names if not any(name in row["metrics"] for row in rows)]
    if absent:
        raise DataFormatError(f"{arguments.scores} has no values for {', '.join(absent)}")
    pairs, report = unanimous_pairs(rows, names, margins)
    folder = Path(arguments.output).parent
    for pair in pairs:  # spelled by the path rule (absolute by default), as readers resolve them
        for key in ("chosen_path", "rejected_path"):
            if pair[key]:
                pair[key] = listed_path(pair[key], folder)
    write_rows(arguments.output, pairs, force=arguments.force)
    print(f"sqa pairs: {report.describe()}; wrote {arguments.output}", file=sys.stderr)
    return 0
