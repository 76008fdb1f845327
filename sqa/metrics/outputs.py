"""Outputs of ``sqa score``: score tables, the error side log, the summary table, shard merging.

A score table is a list of rows ``{"audio_path", "system_id", "sample_id", "utterance_id",
"metrics": {...}}`` (a valid Track-2 ``data.jsonl`` line; NaN = failed), plus ``wacc_source``
(``text`` or ``reference_audio``: what the ``wacc``/``wer`` transcript was compared with) when
those metrics were computed. It is written as JSONL or
CSV by suffix, or as a Kaldi dir (one ``<metric>.scp`` per metric, NaN lines left out) for any other
output path. Failures are listed in ``<output>.errors.jsonl`` (one line per file and metric).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sqa.data.records import listed_path, resolve_path
from sqa.errors import DataFormatError, NothingUsableError, SqaError
from sqa.fileio import TABLE_SUFFIXES, check_writable, read_jsonl, read_rows, write_rows
from sqa.metrics.rank_score import rank_scores
from sqa.metrics.runner import ScoreTask

NAN = float("nan")


def errors_path(output: str | Path) -> Path:
    """The side log of failures that belongs to ``output``."""
    output = Path(output)
    return output.with_name(output.name + ".errors.jsonl")


def is_table(output: str | Path) -> bool:
    """True for ``.jsonl``/``.csv`` outputs; anything else is a Kaldi dir."""
    return Path(output).suffix.lower() in TABLE_SUFFIXES


def build_rows(
    tasks: Sequence[ScoreTask],
    entries: Mapping[tuple[str, str], Mapping[str, Any]],
    names: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Score rows (in task order) and error rows from journal entries."""
    from sqa.metrics.asr import ASR_METRICS, AUDIO_SOURCE, SOURCE_COLUMN, TEXT_SOURCE

    with_source = any(name in ASR_METRICS for name in names)
    rows, failures = [], []
    for task in tasks:
        entry = entries[task.key]
        metrics = {name: _float(entry["metrics"].get(name)) for name in names}
        row: dict[str, Any] = {
            "audio_path": task.path,
            "system_id": task.system_id,
            "sample_id": task.sample_id,
            "utterance_id": task.utterance_id or task.sample_id,
        }
        if with_source:
            row[SOURCE_COLUMN] = TEXT_SOURCE if task.text is not None else AUDIO_SOURCE
        rows.append({**row, "metrics": metrics})
        for metric, reason in sorted((entry.get("errors") or {}).items()):
            failures.append(
                {
                    "system_id": task.system_id,
                    "sample_id": task.sample_id,
                    "metric": metric,
                    "reason": reason,
                }
            )
    return rows, failures


def add_rank_score(rows: list[dict[str, Any]], rank_metrics: Mapping[str, float]) -> None:
    """Add the corpus-level ``rank_score`` (metric -> weight) to every row, in place."""
    scores = rank_scores(rows, list(rank_metrics), weights=rank_metrics)
    for row, score in zip(rows, scores, strict=True):
        row["metrics"]["rank_score"] = score


def write_scores(output: str | Path, rows: list[dict[str, Any]], *, force: bool = True) -> Path:
    """Write a score table as JSONL/CSV (by suffix) or as a Kaldi dir.

    In JSONL a failed value is left out of ``metrics`` (the Track-2 convention: an absent key is a
    missing label; the official loaders read ``metrics.get(name, nan)``, which a ``null`` would
    break); its reason is in the error log, which ``--resume`` reads back.
    """
    if is_table(output):
        folder = Path(output).parent
        jsonl = Path(output).suffix.lower() == ".jsonl"
        listed = [
            {
                **row,
                "audio_path": listed_path(row.get("audio_path") or "", folder),
                "metrics": _finite(row["metrics"]) if jsonl else row["metrics"],
            }
            for row in rows
        ]
        return write_rows(output, listed, force=force)
    from sqa.data import AudioRecord, write_kaldi_dir

    records = [
        AudioRecord(
            row["sample_id"],
            row["system_id"],
            row.get("audio_path", ""),
            utterance_id=row.get("utterance_id"),
            metrics=dict(row["metrics"]),
        )
        for row in rows
    ]
    return write_kaldi_dir(output, records, force=force)


def finish(
    output: str | Path,
    tasks: Sequence[ScoreTask],
    entries: Mapping[tuple[str, str], Mapping[str, Any]],
    names: list[str],
    rank_metrics: Mapping[str, float] | None,
) -> list[dict[str, Any]]:
    """Write the final output, the error log and the summary; remove the journal.

    Raises:
        NothingUsableError: No file got a single value (the error log is still written, the
            score table is not).
    """
    rows, failures = build_rows(tasks, entries, names)
    log = errors_path(output)
    if failures:
        write_rows(log, failures, force=True)
    else:
        log.unlink(missing_ok=True)
    output = Path(output)
    failed_files = sum(
        1 for row in rows if not any(math.isfinite(value) for value in row["metrics"].values())
    )
    if rows and failed_files == len(rows):
        output.with_name(output.name + ".partial").unlink(missing_ok=True)
        raise NothingUsableError(
            f"no usable value: all {len(rows)} file(s) failed every metric; reasons in {log}"
        )
    if rank_metrics:
        add_rank_score(rows, rank_metrics)
    write_scores(output, rows)
    output.with_name(output.name + ".partial").unlink(missing_ok=True)
    print_summary(rows, sys.stderr)
    if failures:
        print(
            f"sqa score: {len(failures)} failed value(s) in {len(rows)} file(s), "
            f"{failed_files} file(s) without any value; reasons in {log}",
            file=sys.stderr,
        )
    return rows


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {name: value for name, value in metrics.items() if math.isfinite(value)}


def _float(value: Any) -> float:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "nan", "none")):
        return NAN
    return float(value)


def _resolve_audio_paths(rows: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """Make table-relative ``audio_path`` values usable from the current directory."""
    for row in rows:
        if row.get("audio_path"):
            row["audio_path"] = resolve_path(str(row["audio_path"]), folder)
    return rows


def read_scores(path: str | Path) -> list[dict[str, Any]]:
    """Read a score table (JSONL, CSV or Kaldi dir) back into rows."""
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        rows = read_jsonl(path)
        for row in rows:
            row["metrics"] = {k: _float(v) for k, v in (row.get("metrics") or {}).items()}
        return _resolve_audio_paths(rows, path.parent)
    if path.suffix.lower() == ".csv":
        fixed = {"audio_path", "system_id", "sample_id", "utterance_id", "wacc_source"}
        rows = [
            {
                **{key: row[key] for key in row if key in fixed},
                "metrics": {k: _float(v) for k, v in row.items() if k not in fixed},
            }
            for row in read_rows(path)
        ]
        return _resolve_audio_paths(rows, path.parent)
    from sqa.data import read_kaldi_dir

    return [
        {
            "audio_path": record.path,
            "system_id": record.system_id,
            "sample_id": record.sample_id,
            "utterance_id": record.utterance_id or record.sample_id,
            "metrics": dict(record.metrics),
        }
        for record in read_kaldi_dir(path)
    ]


def read_existing_output(output: Path, names: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Entries of an already finished output (for ``--resume``), with their logged errors.

    Rows lacking one of ``names`` are left out, so they are scored again. (A Kaldi dir drops NaN
    values, so there its failed files are scored again too.)
    """
    if not output.exists():
        return {}
    errors: dict[tuple[str, str], dict[str, str]] = {}
    if errors_path(output).exists():
        for row in read_jsonl(errors_path(output)):
            errors.setdefault((row["system_id"], row["sample_id"]), {})[row["metric"]] = row[
                "reason"
            ]
    entries = {}
    for row in read_scores(output):
        key = (str(row["system_id"]), str(row["sample_id"]))
        failed = errors.get(key, {})
        if not set(names) <= set(row["metrics"]) | set(failed):
            continue  # scored with fewer metrics: score it again
        metrics = {name: row["metrics"].get(name, NAN) for name in names}
        entries[key] = {
            "system_id": key[0],
            "sample_id": key[1],
            "metrics": metrics,
            "errors": errors.get(key, {}),
        }
    return entries


def print_summary(rows: Sequence[Mapping[str, Any]], stream: Any) -> None:
    """Mean of every metric per system (NaN excluded), with file and failure counts."""
    if not rows:
        return
    names = list(rows[0]["metrics"])
    systems: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        systems.setdefault(str(row["system_id"]), []).append(row)
    width = max(6, *(len(system) for system in systems))
    print(
        f"{'system':<{width}} {'files':>5} {'nan':>4} " + " ".join(f"{n[:11]:>11}" for n in names),
        file=stream,
    )
    for system, members in systems.items():
        table = np.array(
            [[row["metrics"].get(n, NAN) for n in names] for row in members], dtype=float
        )
        failed = int(np.isnan(table).any(axis=1).sum())
        means = [np.nanmean(column) if np.isfinite(column).any() else NAN for column in table.T]
        cells = " ".join(f"{value:>11.4g}" for value in means)
        print(f"{system:<{width}} {len(members):>5} {failed:>4} {cells}", file=stream)


def merge_outputs(
    shards: Sequence[str | Path],
    output: str | Path,
    *,
    rank_metrics: Mapping[str, float] | None = None,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Concatenate shard outputs in the given order (and their error logs) into ``output``.

    Raises:
        DataFormatError: A shard is missing, or a ``(system_id, sample_id)`` repeats.
    """
    check_writable(output, force)
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], str] = {}
    for shard in shards:
        if not Path(shard).exists():
            raise DataFormatError(f"{shard}: no such shard output")
        for row in read_scores(shard):
            key = (str(row["system_id"]), str(row["sample_id"]))
            if key in seen:
                raise DataFormatError(f"{key[0]}/{key[1]} is in both {seen[key]} and {shard}")
            seen[key] = str(shard)
            rows.append(row)
        if errors_path(shard).exists():
            failures.extend(read_jsonl(errors_path(shard)))
    if not rows:
        raise SqaError("the shards hold no rows")
    if rank_metrics:
        add_rank_score(rows, rank_metrics)
    write_scores(output, rows, force=force)
    if failures:
        write_rows(errors_path(output), failures, force=True)
    print_summary(rows, sys.stderr)
    return rows
