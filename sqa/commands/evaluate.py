"""``sqa evaluate``: the eight URGENT 2026 Track-2 numbers of predictions against references.

See :mod:`sqa.predictors.evaluation` for the definitions (those of the official evaluator).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqa.fileio import atomic_open, check_writable, write_rows
from sqa.predictors.evaluation import (
    STATISTICS,
    evaluate_predictions,
    examples,
    prediction_table,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqa evaluate", description="Track-2 MSE/LCC/SRCC/KTAU (utterance and system level)."
    )
    parser.add_argument(
        "--pred", required=True, help="predictions (.jsonl or .csv from sqa predict)"
    )
    parser.add_argument("--ref", required=True, help="references: data.jsonl, Kaldi dir or CSV")
    parser.add_argument(
        "--metric", action="append", help="metric to evaluate (repeatable; default: all shared)"
    )
    parser.add_argument("--pred-metric", help="prediction key to compare with the single --metric")
    parser.add_argument("--output", help="write the results (.json, .jsonl or .csv)")
    parser.add_argument("--force", action="store_true")
    return parser


def format_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """A fixed-width text table, one metric per line."""
    header = f"{'metric':<16}{'n':>7}" + "".join(f"{name:>10}" for name in STATISTICS)
    lines = [header]
    for name, row in results.items():
        cells = "".join(f"{row[s]:>10.4f}" for s in STATISTICS)
        lines.append(f"{name:<16}{row['count']:>7}{cells}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sqa evaluate``."""
    from sqa.data import load_records

    arguments = build_parser().parse_args(argv)
    if arguments.output:
        check_writable(arguments.output, arguments.force)
    metrics = None
    if arguments.metric:
        metrics = [
            name.strip() for item in arguments.metric for name in item.split(",") if name.strip()
        ]
    report = evaluate_predictions(
        prediction_table(arguments.pred),
        load_records(arguments.ref),
        metrics,
        prediction_metric=arguments.pred_metric,
    )
    missing = report["missing_predictions"]
    if missing:
        print(
            f"sqa evaluate: {len(missing)} references have no prediction: {examples(missing)}",
            file=sys.stderr,
        )
    print(format_table(report["metrics"]))
    if arguments.output:
        _write_report(Path(arguments.output), report, arguments.force)
    return 0


def _write_report(destination: Path, report: Mapping[str, Any], force: bool) -> None:
    if destination.suffix.lower() == ".json":
        serialisable = {
            **report,
            "missing_predictions": [list(k) for k in report["missing_predictions"]],
        }
        with atomic_open(check_writable(destination, force)) as stream:
            json.dump(serialisable, stream, indent=2, allow_nan=True)
            stream.write("\n")
        return
    rows = [{"metric": name, **values} for name, values in report["metrics"].items()]
    write_rows(destination, rows, force=force)
