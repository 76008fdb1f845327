"""``sqa report``: a self-contained HTML report of a training run folder.

``sqa report --run DIR --output report.html`` plots the curves of ``DIR/log.jsonl`` (losses,
validation correlations, learning rate...) and lists the run's resolved ``config.yaml`` and
``environment.json``. Reports of ``sqa rank``, ``sqa challenge-score`` and ``sqa evaluate`` come
from their own ``--report FILE.html`` option.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqa.report.html import check_report_path, write_report


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of ``sqa report``."""
    parser = argparse.ArgumentParser(
        prog="sqa report",
        description="Self-contained HTML report (training curves, config) of a run folder.",
    )
    parser.add_argument("--run", metavar="DIR", required=True, help="run folder with log.jsonl")
    parser.add_argument("--output", "-o", required=True, metavar="FILE.html", help="the report")
    parser.add_argument("--force", action="store_true", help="overwrite --output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """HTML report of a training run folder (curves from log.jsonl, config, metadata)."""
    arguments = build_parser().parse_args(None if argv is None else list(argv))
    output = check_report_path(arguments.output, arguments.force)
    from sqa.report.runs import run_report

    write_report(run_report(arguments.run), output, force=arguments.force)
    print(f"wrote {output}", file=sys.stderr)
    return 0
