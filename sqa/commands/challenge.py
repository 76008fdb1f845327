"""``sqa challenge-score``: rank systems from per-file score tables as the challenges do.

Inputs: ``--scores TABLE...`` (``sqa score`` outputs or any CSV/JSONL with ``system_id``; tables
are merged on ``(system_id, sample_id)``, so e.g. an externally computed ``wacc`` table joins the
``sqa score`` one). Styles (see :mod:`sqa.challenge`):

- ``--style urgent`` (default): per-metric ranks of the system means (``--ties dense`` "1223" by
  default, or ``competition`` "1224"), mean rank per category, categories averaged with equal
  weight; ``--categories urgent2024|urgent2025|urgent2026|MAP.yaml``.
- ``--style ccf``: CCF-AATC 2025 objective score: rank points 40 -> 16 of the 2:1:1 weighted
  ranks of WAcc, DNSMOS OVRL and PESQ, plus parameter points (a ``parameters`` column or
  ``--parameters SYSTEM=COUNT`` with COUNT a number such as ``6.63M``, or a checkpoint loaded with
  :func:`sqa.load_model`); a table per distortion type when the tables have a type column.

``--human TABLE`` adds, for every metric column, Spearman and Kendall between system means and
human system means (bootstrap 95% CIs over systems) and flags metrics that disagree in sign.
A metric missing from the tables (or without a value for some system) is reported and left out.

Output columns (``--output`` ``.csv`` or ``.jsonl``, one row per system and table):

- ``table``: ``ranking`` (all files), ``ranking:<type>`` (one distortion type) or ``agreement``.
- URGENT rows: ``rank`` (final rank, the tie mode's), ``system_id``, ``overall`` (mean of the
  category mean ranks, lower is better), ``files``, ``category_<name>`` (mean rank within the
  category), and per metric ``<metric>`` (system mean) and ``rank_<metric>``.
- CCF rows: ``rank``, ``system_id``, ``files``, ``<metric>``, ``rank_<metric>``,
  ``weighted_rank``, ``objective_rank``, ``metric_points`` (40..16), ``parameters``,
  ``parameter_points`` (20/16/12/10/8; empty when unknown), ``score`` (higher is better).
- Agreement rows: ``metric``, ``direction``, ``systems``, ``spearman``, ``spearman_low``,
  ``spearman_high``, ``kendall``, ``kendall_low``, ``kendall_high``, ``sign_disagrees``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

from sqa.commands.options import add_path_argument, checked_table_output
from sqa.errors import SqaError
from sqa.fileio import TABLE_SUFFIXES, write_rows
from sqa.report.html import check_report_path, write_report

_MULTIPLIERS = {"k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of ``sqa challenge-score``."""
    parser = argparse.ArgumentParser(
        prog="sqa challenge-score",
        description="URGENT-style or CCF-AATC-style challenge ranking of systems from per-file "
        "score tables, optionally with metric-human agreement.",
    )
    parser.add_argument(
        "--scores", nargs="+", action="extend", required=True, metavar="TABLE",
        help="per-file score tables (JSONL/CSV/Kaldi dir) with system_id",
    )  # fmt: skip
    parser.add_argument("--style", choices=("urgent", "ccf"), default="urgent", help="scoring")
    parser.add_argument(
        "--categories", default="urgent2026", help="URGENT preset (urgent2024/5/6) or YAML map"
    )
    parser.add_argument(
        "--ties", choices=("dense", "competition"), help="tie mode (urgent: dense, ccf: comp.)"
    )
    parser.add_argument(
        "--ccf-weights", metavar="M=W,...", help="CCF metric weights (wacc=2,dnsmos_ovrl=1,pesq=1)"
    )
    parser.add_argument(
        "--parameters", action="append", default=[], metavar="SYSTEM=COUNT",
        help="parameter count (e.g. 6.63M) or checkpoint of a system (repeatable)",
    )  # fmt: skip
    parser.add_argument("--type-column", help="distortion-type column (default: auto)")
    parser.add_argument("--human", metavar="TABLE", help="human ratings (system_id + column)")
    parser.add_argument("--human-column", default="mos", help="column of --human ratings")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--output", "-o", help="results .csv or .jsonl")
    parser.add_argument("--report", metavar="FILE.html", help="HTML report (needs [report])")
    parser.add_argument("--force", action="store_true", help="overwrite --output/--report")
    add_path_argument(parser)
    return parser


def parse_count(text: str) -> float:
    """``"6.63M"`` -> 6630000.0, ``"1.2e6"`` -> 1200000.0 (K, M, G/B suffixes)."""
    cleaned = text.strip().lower()
    factor = _MULTIPLIERS.get(cleaned[-1:], 1.0)
    number = cleaned[:-1] if cleaned[-1:] in _MULTIPLIERS else cleaned
    value = float(number) * factor
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def _checkpoint_parameters(reference: str) -> float:
    from sqa import load_model

    model = load_model(reference)
    return float(sum(parameter.numel() for parameter in model.parameters()))


def parse_parameters(items: Sequence[str]) -> dict[str, float]:
    """``SYSTEM=COUNT`` or ``SYSTEM=CHECKPOINT`` items -> system -> parameter count."""
    counts: dict[str, float] = {}
    for item in items:
        system, separator, value = item.partition("=")
        if not separator or not system or not value:
            raise SqaError(f"--parameters {item!r}: use SYSTEM=COUNT or SYSTEM=CHECKPOINT")
        try:
            counts[system] = parse_count(value)
        except ValueError:
            counts[system] = _checkpoint_parameters(value)
    return counts


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``wacc=2,pesq=1`` -> ``{"wacc": 2.0, "pesq": 1.0}`` (None: the defaults)."""
    if not text:
        return None
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition("=")
        try:
            weights[name] = float(weight) if weight else 1.0
        except ValueError:
            raise SqaError(f"--ccf-weights: bad weight in {item!r}") from None
    return weights


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain text table of rows with the same keys."""
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [
        max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)
    ]
    lines = ["  ".join(column.rjust(w) for column, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def _report(result: Any) -> None:
    for group, table in result.tables.items():
        print(f"== {result.style} ranking ({group}) ==")
        print(format_table(table.rows))
    if result.agreement:
        print("== metric-human agreement (system level) ==")
        print(format_table(result.agreement))
        flagged = [row["metric"] for row in result.agreement if row["sign_disagrees"]]
        if flagged:
            print(f"sign disagrees with listeners: {', '.join(flagged)}")
    for note in result.notes:
        print(f"sqa challenge-score: {note}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Challenge ranking (URGENT categories or CCF-AATC points) from score tables."""
    arguments = build_parser().parse_args(None if argv is None else list(argv))
    output = checked_table_output(arguments.output, TABLE_SUFFIXES, arguments.force)
    report_path = check_report_path(arguments.report, arguments.force)
    if arguments.resamples < 1:
        raise SqaError("--resamples must be at least 1")
    from sqa.challenge import score_challenge

    human = None
    if arguments.human:
        from sqa.challenge.human import read_human_means

        human = read_human_means(arguments.human, arguments.human_column)
    result = score_challenge(
        arguments.scores,
        style=arguments.style,
        categories=arguments.categories,
        ties=arguments.ties,
        weights=parse_weights(arguments.ccf_weights),
        parameters=parse_parameters(arguments.parameters),
        type_name=arguments.type_column,
        human=human,
        resamples=arguments.resamples,
        seed=arguments.seed,
    )
    _report(result)
    if output is not None:
        write_rows(output, result.output_rows(), force=arguments.force)
        print(f"wrote {output}", file=sys.stderr)
    if report_path is not None:
        from sqa.report.sections import challenge_report

        write_report(challenge_report(result), report_path, force=arguments.force)
        print(f"wrote {report_path}", file=sys.stderr)
    return 0
