"""``sqa agreement``: how well per-file score tables agree with human ratings.

Each ``--scores TABLE[:COLUMN[:LABEL]]`` is joined to the human table on ``(system_id,
sample_id)``; a score row whose ``sample_id`` is the human row's ``utterance_id`` also matches
(folder-per-system inputs of ``sqa score``/``sqa rank`` name files by utterance stem). Reported per
scorer: within-utterance pairwise accuracy, stimulus-level Spearman and system-level Kendall tau-b
with bootstrap intervals over utterances (see :mod:`sqa.agreement`). A column that the metric
registry marks lower-is-better is negated first. Rated items without a score row or with a NaN
score are counted and reported, and left out of the statistics.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sqa.agreement import DEFAULT_RESAMPLES, agreement
from sqa.commands.options import add_path_argument, checked_table_output
from sqa.data.records import parse_float
from sqa.errors import DataFormatError, SqaError
from sqa.fileio import (
    TABLE_SUFFIXES,
    atomic_open,
    check_writable,
    dumps_json,
    flatten_row,
    read_rows,
    write_rows,
)

KEY_COLUMNS = (
    "sample_id", "system_id", "utterance_id", "path", "audio_path", "duration", "wacc_source",
)  # fmt: skip
OUTPUT_SUFFIXES = (".json", *TABLE_SUFFIXES)


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of ``sqa agreement``."""
    parser = argparse.ArgumentParser(
        prog="sqa agreement",
        description="Agreement of per-file score tables with human ratings: within-utterance "
        "pairwise accuracy, stimulus SRCC, system KTAU (bootstrap 95% CIs over utterances).",
    )
    parser.add_argument("--human", required=True, help="ratings CSV/JSONL (system_id, sample_id)")
    parser.add_argument("--human-column", default="mushra", help="column of human ratings")
    parser.add_argument(
        "--scores",
        nargs="+",
        action="extend",  # repeated flags add up: --scores A --scores B == --scores A B
        required=True,
        metavar="TABLE[:COLUMN[:LABEL]]",
        help="per-file score table (sqa score / predict / rank --per-file); COLUMN defaults to "
        "'score' or the table's only score column",
    )
    parser.add_argument("--output", help="results .json, .csv or .jsonl")
    parser.add_argument("--force", action="store_true", help="overwrite --output")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument(
        "--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap resamples"
    )
    add_path_argument(parser)
    return parser


@dataclass(frozen=True)
class ScoreSpec:
    """One ``--scores`` argument: table, column (None: choose) and label (None: the column)."""

    path: Path
    column: str | None
    label: str | None


def parse_score_spec(text: str) -> ScoreSpec:
    """Split ``TABLE[:COLUMN[:LABEL]]``; the longest existing prefix is the table."""
    parts = text.split(":")
    cut = next(
        (size for size in range(len(parts), 0, -1) if Path(":".join(parts[:size])).exists()), 1
    )
    rest = parts[cut:]
    column = rest[0] if rest and rest[0] else None
    label = ":".join(rest[1:]) if len(rest) > 1 and any(rest[1:]) else None
    return ScoreSpec(Path(":".join(parts[:cut])), column, label)


@dataclass(frozen=True)
class HumanTable:
    """Rated items in file order (all arrays (N,)); ``unrated`` rows without a value dropped."""

    systems: list[str]
    samples: list[str]
    groups: list[str]
    values: np.ndarray
    unrated: int


def _ids(row: dict[str, Any], where: str) -> tuple[str, str]:
    system = row.get("system_id", row.get("system"))
    sample = row.get("sample_id")
    if system in (None, "") or sample in (None, ""):
        raise DataFormatError(f"{where}: need columns system_id and sample_id")
    return str(system), str(sample)


def read_human(path: str | Path, column: str) -> HumanTable:
    """Read the human ratings; ``utterance_id`` (else ``sample_id``) groups the pairs."""
    rows = [flatten_row(row) for row in read_rows(path)]
    if not rows:
        raise DataFormatError(f"{path}: no rows")
    if column not in rows[0]:
        raise DataFormatError(f"{path}: no column {column!r} (columns: {', '.join(rows[0])})")
    systems, samples, groups, values = [], [], [], []
    for number, row in enumerate(rows, start=2):
        where = f"{path}:{number}"
        system, sample = _ids(row, where)
        value = parse_float(row.get(column), where)
        if math.isnan(value):
            continue
        systems.append(system)
        samples.append(sample)
        groups.append(str(row.get("utterance_id") or sample))
        values.append(value)
    return HumanTable(systems, samples, groups, np.asarray(values), len(rows) - len(values))


def read_score_rows(path: Path) -> list[dict[str, Any]]:
    """Flat rows of a score table (CSV/JSONL) or of any :func:`sqa.data.load_records` source."""
    if not path.exists():
        raise DataFormatError(f"--scores {path}: no such file or folder")
    if path.suffix.lower() in TABLE_SUFFIXES:
        return [flatten_row(row) for row in read_rows(path)]
    from sqa.data import load_records

    return [
        {"system_id": r.system_id, "sample_id": r.sample_id, **r.metrics}
        for r in load_records(path)
    ]


def choose_column(rows: list[dict[str, Any]], spec: ScoreSpec) -> str:
    """The named column, else ``score``, else the table's only non-key column."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if spec.column is not None:
        if spec.column not in columns:
            raise DataFormatError(
                f"{spec.path}: no column {spec.column!r} (columns: {', '.join(columns)})"
            )
        return spec.column
    candidates = [name for name in columns if name not in KEY_COLUMNS and name != "errors"]
    if "score" in candidates:
        return "score"
    if len(candidates) != 1:
        raise DataFormatError(
            f"{spec.path}: name the column as {spec.path}:COLUMN (one of {', '.join(candidates)})"
        )
    return candidates[0]


def score_lookup(rows: list[dict[str, Any]], column: str, where: Path) -> dict[tuple, float]:
    """``(system_id, sample_id) -> value`` (NaN for an empty cell); repeated keys are an error."""
    values: dict[tuple[str, str], float] = {}
    for number, row in enumerate(rows, start=2):
        key = _ids(row, f"{where}:{number}")
        if key in values:
            raise DataFormatError(f"{where}: repeated row for system {key[0]!r}, {key[1]!r}")
        values[key] = parse_float(row.get(column), f"{where}:{number} column {column!r}")
    return values


def higher_is_better(column: str) -> bool:
    """Direction of a score column: the registry's for a known metric key, else higher."""
    from sqa.metrics.registry import METRIC_SPECS

    spec = METRIC_SPECS.get(column)
    return True if spec is None else bool(spec.higher_is_better)


def join_scores(human: HumanTable, lookup: dict[tuple, float]) -> tuple[np.ndarray, int]:
    """Predicted value of each rated item (NaN: missing) and how many had no score row."""
    predicted = np.full(len(human.samples), np.nan)
    absent = 0
    for index, key in enumerate(zip(human.systems, human.samples, strict=True)):
        by_utterance = (key[0], human.groups[index])
        if key in lookup:
            predicted[index] = lookup[key]
        elif by_utterance in lookup:
            predicted[index] = lookup[by_utterance]
        else:
            absent += 1
    return predicted, absent


def _no_match_message(spec: ScoreSpec, human: HumanTable, lookup: dict[tuple, float]) -> str:
    example = next(iter(lookup), ("?", "?"))
    return (
        f"--scores {spec.path}: no row matches the human table on (system_id, sample_id); "
        f"e.g. scores have {example!r}, ratings have {(human.systems[0], human.samples[0])!r}"
    )


def evaluate_scorer(
    spec: ScoreSpec, human: HumanTable, arguments: argparse.Namespace
) -> dict[str, Any]:
    """Join one score table to the ratings and compute its agreement (one result row)."""
    rows = read_score_rows(spec.path)
    column = choose_column(rows, spec)
    lookup = score_lookup(rows, column, spec.path)
    predicted, absent = join_scores(human, lookup)
    if absent == len(predicted):
        raise SqaError(_no_match_message(spec, human, lookup))
    upward = higher_is_better(column)
    usable = np.isfinite(predicted)
    chosen = np.flatnonzero(usable)
    result = agreement(
        human.values[chosen],
        predicted[chosen] if upward else -predicted[chosen],
        [human.groups[index] for index in chosen],
        [human.systems[index] for index in chosen],
        resamples=arguments.resamples,
        seed=arguments.seed,
    )
    return {
        "label": spec.label or column,
        "table": str(spec.path),
        "column": column,
        "direction": "higher" if upward else "lower (negated)",
        "rated": len(predicted),
        "matched": len(predicted) - absent,
        "absent": absent,
        "nan": int(len(predicted) - absent - usable.sum()),
        **result.as_dict(),
    }


def _cell(value: float, interval: Sequence[float]) -> str:
    return f"{value:6.3f} [{interval[0]:6.3f}, {interval[1]:6.3f}]"


def format_table(results: list[dict[str, Any]]) -> str:
    """Text table: one row per scorer."""
    width = max([len("scorer"), *(len(row["label"]) for row in results)])
    header = (
        f"{'scorer':<{width}}  {'used/rated':>10}  {'absent':>6}  {'nan':>4}  {'pairs':>5}  "
        f"{'pair accuracy [95% CI]':>24}  {'stimulus SRCC [95% CI]':>24}  "
        f"{'system KTAU [95% CI]':>24}"
    )
    lines = [header]
    for row in results:
        used = f"{row['items']}/{row['rated']}"
        lines.append(
            f"{row['label']:<{width}}  {used:>10}  {row['absent']:>6}  {row['nan']:>4}  "
            f"{row['pairs']:>5}  {_cell(row['pairwise_accuracy'], row['pairwise_ci']):>24}  "
            f"{_cell(row['srcc'], row['srcc_ci']):>24}  {_cell(row['ktau'], row['ktau_ci']):>24}"
        )
    return "\n".join(lines)


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    flat = {key: value for key, value in row.items() if key != "system_means"}
    for name in ("pairwise_ci", "srcc_ci", "ktau_ci"):
        low, high = flat.pop(name)
        flat[f"{name}_low"], flat[f"{name}_high"] = low, high
    return flat


def write_results(
    output: Path, results: list[dict[str, Any]], arguments: argparse.Namespace
) -> None:
    """Write the results atomically: full JSON, or one flat row per scorer (CSV/JSONL)."""
    if output.suffix.lower() != ".json":
        write_rows(output, [_flat(row) for row in results], force=arguments.force)
        return
    document = {
        "human": arguments.human,
        "human_column": arguments.human_column,
        "resamples": arguments.resamples,
        "seed": arguments.seed,
        "scorers": results,
    }
    with atomic_open(check_writable(output, arguments.force)) as stream:
        stream.write(dumps_json(document, indent=2) + "\n")


def _warn_missing(row: dict[str, Any]) -> None:
    if row["absent"] or row["nan"]:
        print(
            f"sqa agreement: {row['label']}: {row['absent']} of {row['rated']} rated items have "
            f"no score row and {row['nan']} a NaN score; statistics use the other {row['items']}",
            file=sys.stderr,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Agreement of score tables with human ratings."""
    arguments = build_parser().parse_args(None if argv is None else list(argv))
    output = checked_table_output(arguments.output, OUTPUT_SUFFIXES, arguments.force)
    if arguments.resamples < 1:
        raise SqaError("--resamples must be at least 1")
    human = read_human(arguments.human, arguments.human_column)
    if not human.samples:
        raise SqaError(f"{arguments.human}: no row has a {arguments.human_column!r} value")
    if human.unrated:
        print(
            f"sqa agreement: {human.unrated} human row(s) without a rating ignored", file=sys.stderr
        )
    results = [evaluate_scorer(parse_score_spec(t), human, arguments) for t in arguments.scores]
    for row in results:
        _warn_missing(row)
    print(format_table(results))
    if output is not None:
        write_results(output, results, arguments)
        print(f"wrote {output}", file=sys.stderr)
    return 0
