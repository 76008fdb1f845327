"""``sqa rank`` (rank systems from folders of audio) and ``sqa train-ranker``."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rankers.bradley_terry import bradley_terry_bootstrap
from rankers.ecs import ecs_ranking, symmetrise
from rankers.loading import DEFAULT_RANKER, NO_RANKER_MESSAGE
from rankers.rank_outputs import (
    describe_unreadable,
    per_file_rows,
    per_file_scores,
    ranking_rows,
    report,
    side_outputs,
    write_outputs,
)
from rankers.ranking import RankOptions, RankRun, correlations, mean_rows, run_ranker, run_scalar
from sqa.commands.options import add_backend_argument, add_path_argument
from sqa.commands.sources import add_run_arguments, add_source_arguments
from sqa.errors import NothingUsableError, SqaError
from sqa.fileio import check_writable, write_rows
from sqa.report.html import check_report_path

if TYPE_CHECKING:  # torch is imported only when a ranker runs (`sqa rank --help` stays fast)
    pass


def build_rank_parser() -> argparse.ArgumentParser:
    """Argument parser of ``sqa rank``."""
    parser = argparse.ArgumentParser(
        prog="sqa rank",
        description="Rank systems (folders of homologous enhanced files) with a pairwise ranker "
        "and the ECS algorithm of URGENT-PK.",
    )
    add_source_arguments(parser)
    parser.add_argument("--ref-dir", metavar="DIR", help="reference folder inside --root to skip")
    parser.add_argument("--noisy", metavar="DIR", help="unprocessed inputs (Noisy-Speech MOS)")
    parser.add_argument(
        "--ranker", metavar="CKPT|NAME", help=f"checkpoint/name; default {DEFAULT_RANKER}"
    )
    add_backend_argument(parser, "--ranker")
    parser.add_argument(
        "--scores",
        metavar="TABLE",
        help="baseline instead of a ranker: ECS over per-file scalar scores (CSV/JSONL with "
        "system_id, sample_id and --score-column, e.g. from `sqa score`)",
    )
    parser.add_argument("--score-column", default="dnsmos_ovrl", help="column of --scores")
    parser.add_argument(
        "--scoring", choices=("bs", "nbs"), default="nbs", help="Binary or Non-Binary Scoring"
    )
    parser.add_argument("--symmetric", action="store_true", help="average both input orders")
    parser.add_argument("--adaptive", action="store_true", help="compare only uncertain pairs")
    parser.add_argument(
        "--mos", metavar="CSV",
        help="human MOS: CSV/JSONL per file or per system, or a labelled folder (URGENT-PK root)",
    )  # fmt: skip
    parser.add_argument("--mos-column", default="mos", help="column of --mos")
    parser.add_argument("--output", help="ranking table (.csv or .jsonl)")
    parser.add_argument(
        "--report", metavar="FILE.html", help="self-contained HTML report (needs [report])"
    )
    parser.add_argument("--per-file", metavar="TABLE", help="per-file win probability table")
    parser.add_argument("--bootstrap", type=int, default=200, help="resamples for rank CIs")
    parser.add_argument("--batch-size", type=int, default=64, help="pairs per forward pass")

    parser.add_argument("--seed", type=int, default=0, help="bootstrap/adaptive seed")
    parser.add_argument("--strict", action="store_true", help="missing files are an error")
    add_run_arguments(parser)
    add_path_argument(parser)
    return parser


RANK_OPTION_NAMES = tuple(field.name for field in fields(RankOptions))


def choose_ranker(arguments: argparse.Namespace) -> str | None:
    """The ranker to load: ``--ranker``, else the installed default (None with ``--scores``)."""
    if arguments.scores:
        print(
            f"sqa rank: no ranker; ECS over {arguments.scores} column {arguments.score_column!r}",
            file=sys.stderr,
        )
        return None
    from sqa.checkpoint.manifest import choose_release

    return choose_release(arguments.ranker, DEFAULT_RANKER, "sqa rank", NO_RANKER_MESSAGE)


def _check_outputs(arguments: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """Refuse existing outputs (without --force) before any work: ranking and per-file paths."""
    if arguments.output is None and arguments.report is None:
        raise SqaError("give --output TABLE and/or --report FILE.html")
    arguments.report = check_report_path(arguments.report, arguments.force)
    output = None
    if arguments.output is not None:
        output = check_writable(arguments.output, arguments.force)
        for path in side_outputs(output):
            check_writable(path, arguments.force)
    per_file = check_writable(arguments.per_file, arguments.force) if arguments.per_file else None
    if per_file is not None and per_file.suffix.lower() not in (".csv", ".jsonl"):
        raise SqaError(f"--per-file {per_file}: use a .csv or .jsonl file")
    return output, per_file


def _homologous(arguments: argparse.Namespace) -> Any:
    """Systems and their matched utterances from the source flags (every input of
    :func:`sqa.commands.sources.records_from_arguments`); homologous files share
    ``utterance_id`` (else the ``sample_id`` less its system name)."""
    from sqa.commands.sources import records_from_arguments
    from sqa.data.folders import homologous_from_records

    exclude = [arguments.ref_dir] if arguments.ref_dir else []
    records = records_from_arguments(arguments, exclude=exclude)
    homologous = homologous_from_records(records, strict=arguments.strict)
    if len(homologous.systems) < 2:
        raise SqaError(f"need at least two systems to rank, found {len(homologous.systems)}")
    return homologous


def _summary(arguments: argparse.Namespace, homologous: Any, run: RankRun) -> dict[str, Any]:
    return {
        "systems": len(homologous.systems),
        "utterances": len(homologous.utterances) - len(run.skipped),
        "scoring": arguments.scoring,
        "symmetric": arguments.symmetric,
        "skipped_utterances": run.skipped,
        "missing": homologous.missing,
        **run.summary,
    }


def _recording_warnings(function: Any, arguments: argparse.Namespace) -> tuple[Any, list[str]]:
    """``function(arguments)`` and, for ``--report``, the text of the warnings it raised (shown
    as usual, once it returns)."""
    if arguments.report is None:
        return function(arguments), []
    with warnings.catch_warnings(record=True) as caught:
        result = function(arguments)
    for item in caught:
        warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    return result, [str(item.message) for item in caught]


def rank_main(argv: Sequence[str]) -> int:
    """Rank systems with URGENT-PK/ECS (or ECS over scores).

    See ``sqa rank --help``.
    """
    arguments = build_rank_parser().parse_args(list(argv))
    output, per_file = _check_outputs(arguments)
    arguments.ranker = choose_ranker(arguments)
    homologous, arguments.warnings = _recording_warnings(_homologous, arguments)
    options = RankOptions(**{name: getattr(arguments, name) for name in RANK_OPTION_NAMES})
    run = run_scalar(options, homologous) if options.scores else run_ranker(options, homologous)
    if len(run.skipped) == len(homologous.utterances):
        raise NothingUsableError(
            "no utterance could be read in every system: "
            + describe_unreadable(run.summary["unreadable"])
        )
    ranking = ecs_ranking(run.table, homologous.systems, arguments.scoring, arguments.symmetric)
    table = symmetrise(run.table) if arguments.symmetric else run.table
    bootstrap = bradley_terry_bootstrap(
        table, arguments.scoring, arguments.bootstrap, seed=arguments.seed
    )
    human = _read_mos(arguments)
    rows = ranking_rows(
        ranking, bootstrap, mean_rows(run.replication), mean_rows(run.noisy_mos), human
    )
    summary = _summary(arguments, homologous, run)
    if human:
        summary["correlation_ecs"] = correlations(ranking.scores, homologous.systems, human)
    files = None
    if per_file is not None:
        has_mos = not arguments.scores and bool(np.isfinite(run.replication).any())
        mos = run.replication if has_mos else None
        files = (per_file, per_file_rows(homologous, per_file_scores(run.table), mos))
    if output is not None:
        write_outputs(output, rows, ranking, summary, arguments.force, files)
        report(summary, output)
    elif files is not None:
        write_rows(*files, force=arguments.force)
    if arguments.report is not None:
        _write_report(arguments, rows, ranking, summary)
    return 0


def _write_report(
    arguments: argparse.Namespace, rows: list[dict], ranking: Any, summary: dict[str, Any]
) -> None:
    """The HTML report of the run (ranking with CIs, win-rate heat map, skipped files)."""
    from sqa.report.html import write_report
    from sqa.report.sections import rank_report

    skipped = [
        f"{system}/{utterance}: {reason}" for system, utterance, reason in summary["unreadable"]
    ]
    skipped += [
        f"{stem}: missing from {', '.join(systems)}" for stem, systems in summary["missing"].items()
    ]
    notes = list(arguments.warnings)
    notes += [
        f"utterance {name} left out: not readable in every system"
        for name in summary["skipped_utterances"]
    ]
    built = rank_report(rows, list(ranking.systems), ranking.win_matrix, skipped, notes)
    destination = write_report(built, arguments.report, force=arguments.force)
    print(f"wrote {destination}", file=sys.stderr)


def _read_mos(arguments: argparse.Namespace) -> dict[str, float]:
    if not arguments.mos:
        return {}
    from rankers.data import read_system_mos

    return read_system_mos(arguments.mos, arguments.mos_column)
