"""Score many files: worker processes, a resumable journal, and the final atomic output.

Work items are ``ScoreTask`` tuples (paths only), so the parent never loads a model. Each worker
process builds one :class:`~sqa.metrics.scorer.MetricScorer` in its initialiser and reuses its
models for every file. Results are appended to a journal (``<output>.partial``, one JSON line per
finished file after a header line describing the job); the final outputs are written atomically
from the journal in input order, so an interrupted and resumed job yields exactly the same file
as an uninterrupted one.

A metric whose teacher package is missing is NaN on every file (reason in the errors log) while the
others go on: the worker that first finds it unavailable attaches the reason to that file's entry,
and :func:`run_tasks` prints it as one stderr line per metric backend, whatever ``jobs`` is.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqa.errors import SqaError
from sqa.fileio import format_jsonl_line
from sqa.metrics.scorer import MetricScorer, ScoringOptions

JOURNAL_VERSION = 1


@dataclass(frozen=True)
class ScoreTask:
    """One file to score: its key, audio path and optional reference path."""

    system_id: str
    sample_id: str
    path: str
    reference: str | None
    utterance_id: str | None = None
    text: str | None = None  # transcript for wacc/wer (None: transcribe the reference instead)

    @property
    def key(self) -> tuple[str, str]:
        """The unique key ``(system_id, sample_id)``."""
        return (self.system_id, self.sample_id)


_WORKER_SCORER: MetricScorer | None = None
# Unavailable backends this process has already reported to the parent.
_REPORTED: set[str] = set()


def _initialise_worker(metric_names: list[str], options: ScoringOptions) -> None:
    """Build the per-process scorer (models then load lazily, once per process)."""
    global _WORKER_SCORER
    _WORKER_SCORER = MetricScorer(metric_names, options)
    _REPORTED.clear()
    if _WORKER_SCORER.uses_torch:
        import torch

        # One thread per worker: parallelism comes from processes, and a fixed thread count keeps
        # the results identical for any --jobs value.
        torch.set_num_threads(1)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def score_task(task: ScoreTask) -> dict[str, Any]:
    """Score one file with the worker's scorer.

    Returns:
        A journal entry: ``system_id``, ``sample_id``, ``metrics``, ``errors``, and the wall and
        CPU time per backend for this file (``seconds``, ``cpu_seconds``).
    """
    from sqa.audio import load_audio

    scorer = _WORKER_SCORER
    if scorer is None:
        raise RuntimeError("score_task called outside an initialised worker")
    before, before_cpu = dict(scorer.seconds), dict(scorer.cpu_seconds)
    entry: dict[str, Any] = {"system_id": task.system_id, "sample_id": task.sample_id}
    try:
        estimate, rate = load_audio(task.path, min_duration=0.0, validate=False)
    except SqaError as error:
        nan = float("nan")
        reason = f"{type(error).__name__}: {error}"
        entry.update(
            metrics=dict.fromkeys(scorer.metric_names, nan),
            errors=dict.fromkeys(scorer.metric_names, reason),
            seconds={},
            cpu_seconds={},
        )
        return entry
    reference, reference_error = None, None
    if task.reference is not None:
        try:
            reference, _ = load_audio(
                task.reference, sample_rate=rate, min_duration=0.0, validate=False
            )
        except SqaError as error:
            reference_error = f"reference {type(error).__name__}: {error}"
    result = scorer.score(estimate, rate, reference, task.text)
    errors = dict(result.errors)
    if reference_error:
        errors = {
            key: reference_error if "no reference" in why else why for key, why in errors.items()
        }
    entry.update(
        metrics=result.values,
        errors=errors,
        seconds={name: scorer.seconds[name] - before[name] for name in scorer.seconds},
        cpu_seconds={name: scorer.cpu_seconds[name] - before_cpu[name] for name in scorer.seconds},
    )
    fresh = {name: why for name, why in scorer.unavailable.items() if name not in _REPORTED}
    if fresh:
        _REPORTED.update(fresh)
        entry["unavailable"] = fresh  # popped by run_tasks, never written
    return entry


def _announce_unavailable(entry: dict[str, Any], announced: set[str]) -> dict[str, Any]:
    """Print each newly unavailable backend of ``entry`` once on stderr; returns the entry."""
    from tqdm import tqdm

    for name, reason in entry.pop("unavailable", {}).items():
        if name not in announced:
            announced.add(name)
            tqdm.write(f"sqa score: {reason}", file=sys.stderr)
    return entry


def run_tasks(
    tasks: Sequence[ScoreTask],
    metric_names: list[str],
    options: ScoringOptions,
    *,
    jobs: int = 1,
    progress: bool = True,
) -> Iterator[dict[str, Any]]:
    """Score tasks in ``jobs`` processes (1: in this process), yielding entries as they finish.

    Args:
        tasks: Files to score.
        metric_names: Registry keys to compute.
        options: Backend options.
        jobs: Worker processes (1: score in this process).
        progress: Show a tqdm bar on stderr.

    Yields:
        Journal entries (see :func:`score_task`), in completion order. A backend whose package is
        missing is announced once on stderr (``sqa score: <metric> unavailable (NaN): ...``).
    """
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), unit="file", file=sys.stderr, disable=not progress or not tasks)
    announced: set[str] = set()
    try:
        if jobs <= 1:
            threads = _torch_threads() if MetricScorer(metric_names, options).uses_torch else None
            _initialise_worker(metric_names, options)
            try:
                for task in tasks:
                    yield _announce_unavailable(score_task(task), announced)
                    bar.update()
            finally:
                if threads is not None:
                    import torch

                    torch.set_num_threads(threads)
            return
        # "spawn" keeps workers independent of whatever the parent has imported (torch, threads).
        context = multiprocessing.get_context("spawn")
        with context.Pool(jobs, _initialise_worker, (metric_names, options)) as pool:
            for entry in pool.imap_unordered(score_task, tasks, chunksize=1):
                yield _announce_unavailable(entry, announced)
                bar.update()
    finally:
        bar.close()


def journal_header(metric_names: list[str], options: ScoringOptions, shard: str) -> dict[str, Any]:
    """The first journal line: what job the journal belongs to (checked on --resume)."""
    settings = asdict(options)
    settings["weights"] = dict(sorted(settings["weights"].items()))
    return {
        "journal": JOURNAL_VERSION,
        "metrics": metric_names,
        "options": settings,
        "shard": shard,
    }


def read_journal(path: Path, header: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Entries of an existing journal, refusing one written for a different job.

    A truncated last line (the job was killed while writing it) is ignored.
    """
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    with open(path, encoding="utf-8") as stream:
        lines = stream.read().split("\n")
    if not lines or not lines[0].strip():
        return entries
    found = json.loads(lines[0])
    if found != json.loads(json.dumps(header)):
        raise SqaError(
            f"{path} was written by a job with other metrics/options/shard; "
            "rerun with the same arguments or pass --force to start over"
        )
    for line in lines[1:]:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        entries[(entry["system_id"], entry["sample_id"])] = entry
    return entries


class Journal:
    """Append-only progress file, flushed after every entry."""

    def __init__(self, path: Path, header: Mapping[str, Any], *, fresh: bool) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if fresh or not path.exists():
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(json.dumps(header) + "\n")
        else:
            self._terminate_last_line()
        self._stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def _terminate_last_line(self) -> None:
        """Make sure a truncated final line does not swallow the next entry."""
        with open(self.path, "rb+") as stream:
            if stream.seek(0, os.SEEK_END) == 0:
                return
            stream.seek(-1, os.SEEK_END)
            if stream.read(1) != b"\n":
                stream.write(b"\n")

    def append(self, entry: Mapping[str, Any]) -> None:
        """Record one finished file durably."""
        self._stream.write(format_jsonl_line(entry) + "\n")
        self._stream.flush()
        os.fsync(self._stream.fileno())

    def close(self) -> None:
        """Close the file (it stays on disk until the final output is written)."""
        self._stream.close()
