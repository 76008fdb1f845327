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

import errno
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqa.errors import OutputError, SqaError, TooShortAudioError
from sqa.fileio import format_jsonl_line
from sqa.metrics.process_pool import map_isolating_crashes
from sqa.metrics.scorer import MetricScorer, ScoringOptions, describe_error

JOURNAL_VERSION = 1
WORKER_CRASH_REASON = (
    "the scoring process died on this file (killed by a signal, e.g. a crash in a metric's "
    "native code or running out of memory); its metrics are NaN and the other files go on"
)


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
    if multiprocessing.parent_process() is not None:
        # Ctrl-C reaches the whole process group: the parent stops the pool and keeps the
        # journal; a worker that also raised KeyboardInterrupt would only print a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
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
        _check_duration(estimate, rate, task.path)
    except SqaError as error:
        return failed_entry(task, scorer.metric_names, describe_error(error))
    reference, reference_error = _load_reference(task.reference, rate)
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


def _load_reference(path: str | None, rate: int) -> tuple[Any, str | None]:
    """The reference at the estimate's rate, or ``None`` and why it cannot be used."""
    from sqa.audio import load_audio

    if path is None:
        return None, None
    try:
        reference, _ = load_audio(path, sample_rate=rate, min_duration=0.0, validate=False)
        _check_duration(reference, rate, path)
    except SqaError as error:
        return None, f"reference: {describe_error(error)}"
    return reference, None


def _check_duration(samples: Any, sample_rate: int, path: str) -> None:
    """Refuse audio shorter than the documented minimum before any metric sees it.

    The metrics themselves only reject empty input, and several of them return numbers for a
    20 ms file; the minimum of :mod:`sqa.audio` is the suite's promise, so it is enforced here.
    Other defects (silence, NaN) are left to the metrics, which name them per metric.
    """
    from sqa.audio import DEFAULT_MIN_DURATION

    duration = samples.shape[-1] / float(sample_rate)
    if 0 < duration < DEFAULT_MIN_DURATION:
        raise TooShortAudioError(
            f"{path}: audio is {duration:.3f} s long, shorter than the minimum "
            f"{DEFAULT_MIN_DURATION} s"
        )


def failed_entry(task: ScoreTask, metric_names: Sequence[str], reason: str) -> dict[str, Any]:
    """A journal entry with every metric NaN for the same ``reason``."""
    return {
        "system_id": task.system_id,
        "sample_id": task.sample_id,
        "metrics": dict.fromkeys(metric_names, float("nan")),
        "errors": dict.fromkeys(metric_names, reason),
        "seconds": {},
        "cpu_seconds": {},
    }


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
    """Score tasks in ``jobs`` worker processes (0: in this process), yielding finished entries.

    Even one job runs in a worker process: a metric's native code that crashes (a segmentation
    fault, the OOM killer) then costs that file, which gets NaN with a reason, never the run.

    Args:
        tasks: Files to score.
        metric_names: Registry keys to compute.
        options: Backend options.
        jobs: Worker processes (0: score in this process, without crash isolation).
        progress: Show a tqdm bar on stderr.

    Yields:
        Journal entries (see :func:`score_task`), in completion order. A backend whose package is
        missing is announced once on stderr (``sqa score: <metric> unavailable (NaN): ...``).
    """
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), unit="file", file=sys.stderr, disable=not progress or not tasks)
    announced: set[str] = set()
    if jobs <= 0:
        entries = _in_process(tasks, metric_names, options)
    else:
        entries = map_isolating_crashes(
            score_task,
            tasks,
            jobs,
            (_initialise_worker, (metric_names, options)),
            lambda task: failed_entry(task, metric_names, WORKER_CRASH_REASON),
        )
    try:
        for entry in entries:
            yield _announce_unavailable(entry, announced)
            bar.update()
    finally:
        entries.close()  # stops the workers at once when the caller stops early (Ctrl-C)
        bar.close()


def _in_process(
    tasks: Sequence[ScoreTask], metric_names: list[str], options: ScoringOptions
) -> Iterator[dict[str, Any]]:
    """Score tasks in this process, restoring torch's thread count afterwards."""
    threads = _torch_threads() if MetricScorer(metric_names, options).uses_torch else None
    _initialise_worker(metric_names, options)
    try:
        for task in tasks:
            yield score_task(task)
    finally:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)


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
    try:
        found = json.loads(lines[0])
    except json.JSONDecodeError:
        return entries  # the header itself was cut short: nothing was journaled after it
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
    """Append-only progress file, made durable after every entry.

    A failure to write it (disk full, read-only or removed folder) is an :class:`OutputError`
    naming the journal; what it already holds stays readable by :func:`read_journal`.
    """

    def __init__(self, path: Path, header: Mapping[str, Any], *, fresh: bool) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if fresh or not path.exists():
                with open(path, "w", encoding="utf-8") as stream:
                    stream.write(json.dumps(header) + "\n")
            else:
                self._terminate_last_line()
            # Unbuffered: a failed write never leaves bytes behind to be written at close.
            self._stream = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        except OSError as error:
            raise OutputError(path, error) from error

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
        data = memoryview((format_jsonl_line(entry) + "\n").encode("utf-8"))
        try:
            if os.fstat(self._stream.fileno()).st_nlink == 0:
                raise FileNotFoundError(
                    errno.ENOENT, "it was deleted while running (was the output folder removed?)"
                )
            while data:
                written = self._stream.write(data)
                if not written:
                    raise OSError(errno.EIO, "the journal accepts no more data")
                data = data[written:]
            os.fsync(self._stream.fileno())
        except OSError as error:
            raise OutputError(self.path, error) from error

    def close(self) -> None:
        """Close the file (it stays on disk until the final output is written)."""
        self._stream.close()
