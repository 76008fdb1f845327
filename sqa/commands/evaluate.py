"""``sqa evaluate``: the eight URGENT 2026 Track-2 numbers of predictions against references.

See :mod:`sqa.track2.evaluation` for the definitions (those of the official evaluator).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqa.commands.options import add_path_argument
from sqa.errors import SqaError
from sqa.fileio import atomic_open, check_writable, dumps_json, write_rows
from sqa.report.html import check_report_path, write_report
from sqa.track2.evaluation import (
    STATISTICS,
    evaluate_official,
    evaluate_predictions,
    examples,
    official_predictions,
    prediction_table,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqa evaluate", description="Track-2 MSE/LCC/SRCC/KTAU (utterance and system level)."
    )
    parser.add_argument(
        "--pred",
        required=True,
        help="predictions: sqa predict or official results.jsonl, CSV, mos.scp or a zip",
    )
    parser.add_argument("--ref", required=True, help="references: data.jsonl, Kaldi dir or CSV")
    parser.add_argument(
        "--metric", action="append", help="metric to evaluate (repeatable; default: all shared)"
    )
    parser.add_argument(
        "--ref-metric", help="reference key (the official evaluator's flag; one metric)"
    )
    parser.add_argument(
        "--pred-metric", help="prediction key compared with the single reference metric"
    )
    parser.add_argument(
        "--official",
        action="store_true",
        help="reproduce the official evaluator exactly: NaN predictions propagate into the "
        "statistics, duplicate predictions count twice, a reference row without the label is an "
        "error, --pred-metric defaults to mos",
    )
    parser.add_argument("--output", help="write the results (.json, .jsonl or .csv)")
    parser.add_argument("--report", metavar="FILE.html", help="HTML report (needs [report])")
    parser.add_argument(
        "--plot", metavar="DIR", help="write <metric>_utterance.png and <metric>_system.png"
    )
    parser.add_argument("--force", action="store_true", help="overwrite the outputs")
    add_path_argument(parser)
    return parser


def format_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """A fixed-width text table, one metric per line."""
    header = f"{'metric':<16}{'n':>7}" + "".join(f"{name:>10}" for name in STATISTICS)
    lines = [header]
    for name, row in results.items():
        cells = "".join(f"{row[statistic]:>10.4f}" for statistic in STATISTICS)
        lines.append(f"{name:<16}{row['count']:>7}{cells}")
    return "\n".join(lines)


def _metrics(arguments: argparse.Namespace) -> list[str] | None:
    """The reference metrics asked for (``--metric`` list and/or ``--ref-metric``)."""
    names = [
        name.strip() for item in arguments.metric or [] for name in item.split(",") if name.strip()
    ]
    if arguments.ref_metric:
        names = list(dict.fromkeys([*names, arguments.ref_metric]))
    if arguments.official and not names:
        names = ["mos"]  # the official evaluator's default key
    return names or None


def main(argv: Sequence[str] | None = None) -> int:
    """Track-2 MSE/LCC/SRCC/KTAU of predictions against labels."""
    from sqa.data import load_records

    arguments = build_parser().parse_args(argv)
    if arguments.output:
        check_writable(arguments.output, arguments.force)
    report_path = check_report_path(arguments.report, arguments.force)
    if arguments.official and (report_path or arguments.plot):
        raise SqaError("--report/--plot are not available with --official")
    metrics = _metrics(arguments)
    references = load_records(arguments.ref)
    if arguments.official:
        if len(metrics) != 1:
            raise SqaError("--official evaluates one metric: give one --ref-metric (default mos)")
        # As the official eval.py: --ref-metric and --pred-metric both default to "mos".
        key = arguments.pred_metric or "mos"
        report = evaluate_official(
            official_predictions(arguments.pred, references, key), references, metrics[0]
        )
    else:
        predictions = prediction_table(arguments.pred, references, arguments.pred_metric)
        report = evaluate_predictions(
            predictions, references, metrics, prediction_metric=arguments.pred_metric
        )
        _report_left_out(report)
        if report_path or arguments.plot:
            _figures(arguments, report_path, (predictions, references), report)
    print(format_table(report["metrics"]))
    if arguments.output:
        _write_report(Path(arguments.output), report, arguments.force)
    return 0


def _figures(
    arguments: argparse.Namespace, report_path: Path | None, inputs: tuple, report: Mapping
) -> None:
    """Scatter plots of the evaluation: the HTML report and/or PNGs in ``--plot``."""
    from sqa.report.evaluation import (
        evaluate_report,
        evaluation_pairs,
        scatter_figures,
        write_plots,
    )

    predictions, references = inputs
    results = report["metrics"]
    pairs = evaluation_pairs(predictions, references, list(results), arguments.pred_metric)
    figures = scatter_figures(pairs, results)
    if arguments.plot:
        paths = write_plots(Path(arguments.plot), figures, arguments.force)
        print(f"wrote {len(paths)} plots to {arguments.plot}", file=sys.stderr)
    if report_path is not None:
        built = evaluate_report(figures, results, report["missing_predictions"])
        write_report(built, report_path, force=arguments.force)
        print(f"wrote {report_path}", file=sys.stderr)


def _report_left_out(report: Mapping[str, Any]) -> None:
    """Say on stderr which reference rows did not enter the statistics."""
    missing = report["missing_predictions"]
    if missing:
        print(
            f"sqa evaluate: {len(missing)} references have no prediction: {examples(missing)}",
            file=sys.stderr,
        )
    for name, row in report["metrics"].items():
        if row.get("unlabelled"):
            print(
                f"sqa evaluate: {row['unlabelled']} reference row(s) without a finite {name!r} "
                "label were left out",
                file=sys.stderr,
            )


def _write_report(destination: Path, report: Mapping[str, Any], force: bool) -> None:
    if destination.suffix.lower() == ".json":
        serialisable = {
            **report,
            "missing_predictions": [list(k) for k in report["missing_predictions"]],
        }
        with atomic_open(check_writable(destination, force)) as stream:
            stream.write(dumps_json(serialisable, indent=2) + "\n")
        return
    rows = [{"metric": name, **values} for name, values in report["metrics"].items()]
    write_rows(destination, rows, force=force)
