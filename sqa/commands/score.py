"""``sqa score``: label files with teacher metrics; ``sqa score merge`` combines shards.

Inputs: ``--systems DIR...`` (folders of audio, one per system, or one root holding them),
``--scp wav.scp`` or ``--data FILE`` (any format of :func:`sqa.data.load_records`). References:
``--ref-dir DIR`` (``DIR/<utterance>.<ext>``) or ``--ref-scp ref.scp`` (keyed by utterance or
sample id). Transcripts for ``wacc``/``wer``: ``--text`` (a Kaldi ``text`` file or a CSV/JSONL with
a ``text`` field, same keys); files without one are compared with the transcript of their
reference audio, and the ``wacc_source`` column says which (``text``/``reference_audio``).
Output by suffix: ``.jsonl`` (Track-2 rows), ``.csv``, or anything else = a Kaldi dir
with one ``<metric>.scp`` per metric. Failures become NaN and go to ``<output>.errors.jsonl``.
Progress is journaled in ``<output>.partial`` so ``--resume`` continues an interrupted job.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqa.commands.options import add_path_argument
from sqa.commands.sources import (
    add_run_arguments,
    add_source_arguments,
    records_from_arguments,
)
from sqa.errors import DataFormatError, SqaError
from sqa.fileio import check_writable
from sqa.metrics.registry import METRIC_GROUPS, METRIC_SPECS, expand_metric_names
from sqa.metrics.runner import Journal, ScoreTask, journal_header, read_journal, run_tasks
from sqa.metrics.scorer import MetricBackend, ScoringOptions, backends_for

if TYPE_CHECKING:
    from sqa.data import AudioRecord

WEIGHT_OPTIONS = ("nisqa", "sigmos", "utmos", "scoreq", "sbert", "lps", "spksim", "cer")
ROW_KEYS = ("audio_path", "system_id", "sample_id", "utterance_id")


class _ListMetrics(argparse.Action):
    """``--list-metrics``: print the registry and exit (no other argument needed)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        lines = [f"{'name':<14} {'dir':<4} {'ref':<4} {'rate':>6}  {'weights':<17} description"]
        for spec in METRIC_SPECS.values():
            direction = "up" if spec.higher_is_better else "down"
            reference = "yes" if spec.needs_reference else "no"
            rate = spec.sample_rate or "-"
            weights = spec.needs_weights or "-"
            lines.append(
                f"{spec.name:<14} {direction:<4} {reference:<4} {rate:>6}  {weights:<17} "
                f"{spec.description}"
            )
        groups = ", ".join(f"{name} ({len(items)})" for name, items in METRIC_GROUPS.items())
        parser.exit(0, "\n".join(lines) + f"\ngroups: {groups}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sqa score``."""
    parser = argparse.ArgumentParser(
        prog="sqa score",
        description="Compute teacher metrics per file (see also: sqa score merge SHARD... -o OUT).",
    )
    add_source_arguments(parser)
    reference = parser.add_mutually_exclusive_group()
    reference.add_argument("--ref-dir", metavar="DIR", help="clean references DIR/<utt>.<ext>")
    reference.add_argument("--ref-scp", metavar="SCP", help="clean references '<utt> <path>'")
    parser.add_argument(
        "--text",
        metavar="LISTING",
        help="transcripts for wacc/wer: Kaldi text '<utt> <words>', or CSV/JSONL with 'text'",
    )
    parser.add_argument("--metrics", default="all-offline", help="comma list or group name")
    parser.add_argument(
        "--list-metrics", nargs=0, action=_ListMetrics, help="list known metrics and exit"
    )
    parser.add_argument("--output", "-o", required=True, help=".jsonl, .csv or Kaldi dir")
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        help="worker processes; each file is scored in a worker, so a native crash costs one file "
        "(0: score in this process, without that isolation, e.g. for a debugger)",
    )
    parser.add_argument("--shard", default="0/1", metavar="I/N", help="score only shard I of N")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted job")
    parser.add_argument(
        "--dnsmos-mode",
        choices=("full", "fast"),
        default="full",
        help="full: the reference 9.01 s sliding windows (default); fast: one window (±0.07 MOS)",
    )
    parser.add_argument("--plcmos-seed", type=int, default=0, help="seed of PLCMOS's random draws")
    parser.add_argument(
        "--rank-metrics", help="NAME[=WEIGHT],... ranked into rank_score (default: all, weight 1)"
    )
    add_run_arguments(parser, device=False)
    for name in WEIGHT_OPTIONS:
        parser.add_argument(f"--{name}-weights", metavar="PATH", help=f"local {name} weights")
    add_path_argument(parser)
    return parser


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``I/N`` (0 <= I < N)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise SqaError(f"--shard expects I/N such as 0/4, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise SqaError(f"--shard {text}: need 0 <= I < N")
    return index, count


def _records(arguments: argparse.Namespace) -> list[AudioRecord]:
    # A reference folder inside the root is not a system.
    return records_from_arguments(
        arguments, exclude=[arguments.ref_dir] if arguments.ref_dir else []
    )


def _reference_lookup(arguments: argparse.Namespace) -> dict[str, str] | None:
    if arguments.ref_scp:
        from sqa.data.kaldi import read_scp
        from sqa.data.records import resolve_path

        base = Path(arguments.ref_scp).parent
        return {key: resolve_path(path, base) for key, path in read_scp(arguments.ref_scp).items()}
    if arguments.ref_dir:
        folder = Path(arguments.ref_dir)
        if not folder.is_dir():
            raise DataFormatError(f"--ref-dir {folder}: not a folder")
        from sqa.data.folders import files_by_stem, list_audio

        chosen = files_by_stem(f"--ref-dir {folder}", list_audio(folder))
        return {stem: str(path) for stem, path in chosen.items()}
    return None


def build_tasks(arguments: argparse.Namespace) -> list[ScoreTask]:
    """Tasks for every input record, with their reference paths resolved."""
    references = _reference_lookup(arguments)
    transcripts = None
    if arguments.text:
        from sqa.data.transcripts import read_transcripts

        transcripts = read_transcripts(arguments.text)
    tasks = []
    for record in _records(arguments):
        reference = None
        if references is not None:
            reference = references.get(record.utterance_id or "") or references.get(
                record.sample_id
            )
        text = None
        if transcripts is not None:
            from sqa.data.transcripts import transcript_for

            text = transcript_for(transcripts, record.utterance_id, record.sample_id)
        tasks.append(
            ScoreTask(
                record.system_id,
                record.sample_id,
                record.path,
                reference,
                record.utterance_id,
                text,
            )
        )
    if not tasks:
        raise DataFormatError("no audio files to score")
    return tasks


def _metric_selection(
    arguments: argparse.Namespace, has_references: bool
) -> tuple[list[str], bool]:
    """Per-file metric names and whether rank_score was requested."""
    names = expand_metric_names(arguments.metrics)
    wants_rank = "rank_score" in names
    names = [name for name in names if name != "rank_score"]
    if not has_references:
        # With transcripts, wacc/wer need no reference audio.
        text_metrics = ("wacc", "wer") if arguments.text else ()
        dropped = [
            name
            for name in names
            if METRIC_SPECS[name].needs_reference and name not in text_metrics
        ]
        if dropped and arguments.metrics.strip() not in ("all-offline",):
            raise SqaError(f"{', '.join(dropped)} need references: pass --ref-dir or --ref-scp")
        if dropped:
            print(f"sqa score: no references given, skipping {', '.join(dropped)}", file=sys.stderr)
        names = [name for name in names if name not in dropped]
    if not names:
        raise SqaError("no per-file metrics left to compute")
    return names, wants_rank


def _options(arguments: argparse.Namespace) -> ScoringOptions:
    weights = {
        f"--{name}-weights": getattr(arguments, f"{name}_weights")
        for name in WEIGHT_OPTIONS
        if getattr(arguments, f"{name}_weights")
    }
    for option, path in weights.items():
        if not Path(path).is_file():
            raise SqaError(f"{option} {path}: no such file")
    return ScoringOptions(arguments.dnsmos_mode, arguments.plcmos_seed, weights)


def _check_weight_files(backends: Sequence[MetricBackend], options: ScoringOptions) -> None:
    """Load the weights that are torch files now: a bad one is one line, with no journal left."""
    if any(backend.name == "nisqa" for backend in backends):
        from sqa.metrics.nisqa import load_nisqa

        load_nisqa(options.weights["--nisqa-weights"])


def main(argv: Sequence[str]) -> int:
    """Label files with teacher metrics (`score merge` joins shards)."""
    argv = list(argv)
    if argv[:1] == ["merge"]:
        return merge_main(argv[1:])
    arguments = build_parser().parse_args(argv)
    if arguments.jobs < 0:
        raise SqaError("--jobs must be 0 (this process) or a number of worker processes")
    shard_index, shard_count = parse_shard(arguments.shard)
    tasks = build_tasks(arguments)
    has_references = arguments.ref_dir is not None or arguments.ref_scp is not None
    names, wants_rank = _metric_selection(arguments, has_references)
    if wants_rank and shard_count > 1:
        raise SqaError(
            "rank_score needs every system: add it when merging (sqa score merge --rank-score)"
        )
    options = _options(arguments)
    # Fail on missing or unusable weights before any work (and before the journal exists).
    _check_weight_files(backends_for(names, options), options)
    tasks = shard_tasks(tasks, shard_index, shard_count)
    check_output_can_hold(arguments.output, tasks)
    rank_metrics = parse_rank_metrics(arguments.rank_metrics, names)
    if wants_rank and not set(rank_metrics) <= set(names):
        raise SqaError("--rank-metrics must be a subset of the computed --metrics")
    from sqa.metrics.outputs import finish

    try:
        entries = _run_with_journal(arguments, tasks, names, options)
        finish(arguments.output, tasks, entries, names, rank_metrics if wants_rank else None)
    except (KeyboardInterrupt, OSError) as stopped:
        _add_resume_note(
            stopped,
            Path(arguments.output),
            journal_header(names, options, arguments.shard),
            len(tasks),
        )
        raise
    return 0


def _add_resume_note(
    stopped: BaseException, output: Path, header: dict[str, Any], total: int
) -> None:
    """Tell, on the error's one line, what the journal kept and how to go on from it."""
    journal_path = output.with_name(output.name + ".partial")
    if not journal_path.is_file():
        return
    try:
        kept = len(read_journal(journal_path, header))
    except (OSError, SqaError, ValueError):
        return
    stopped.add_note(
        f"{kept} of {total} file(s) are kept in {journal_path}: "
        "rerun the same command with --resume to continue"
    )


def check_output_can_hold(output: str | Path, tasks: Sequence[ScoreTask]) -> None:
    """Refuse, before any scoring, keys that the output format cannot hold (a Kaldi dir takes no
    id with a blank), so that no work is lost and no journal is left behind."""
    from sqa.data import AudioRecord
    from sqa.data.kaldi import check_kaldi_records
    from sqa.metrics.outputs import is_table

    if not is_table(output):
        records = [
            AudioRecord(task.sample_id, task.system_id, task.path, task.utterance_id)
            for task in tasks
        ]
        check_kaldi_records(records, output)


def parse_rank_metrics(text: str | None, default: Sequence[str]) -> dict[str, float]:
    """Parse ``--rank-metrics pesq=2,estoi,sdr`` into metric -> weight (default weight 1).

    Without ``text`` every metric of ``default`` gets weight 1.
    """
    if not text:
        return dict.fromkeys(default, 1.0)
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition("=")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise SqaError(f"--rank-metrics: bad weight in {item!r}") from None
        if value <= 0:
            raise SqaError(f"--rank-metrics: weights must be positive, got {item!r}")
        weights.update(dict.fromkeys(expand_metric_names(name), value))
    return weights


def shard_tasks(tasks: list[ScoreTask], index: int, count: int) -> list[ScoreTask]:
    """Contiguous shard ``index`` of ``count`` (merging shards in order restores the full list)."""
    size = math.ceil(len(tasks) / count)
    return tasks[index * size : (index + 1) * size]


def _run_with_journal(
    arguments: argparse.Namespace, tasks: list[ScoreTask], names: list[str], options: ScoringOptions
) -> dict[tuple[str, str], dict[str, Any]]:
    """Score the tasks not yet done, journaling each result; returns all entries by key."""
    output = Path(arguments.output)
    journal_path = output.with_name(output.name + ".partial")
    header = journal_header(names, options, arguments.shard)
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if arguments.resume:
        from sqa.metrics.outputs import read_existing_output

        done.update(read_existing_output(output, names))
        if journal_path.exists():
            done.update(read_journal(journal_path, header))
    else:
        if journal_path.exists() and not arguments.force:
            raise SqaError(f"{journal_path} exists (an interrupted job): pass --resume or --force")
        check_writable(output, arguments.force)
    todo = [task for task in tasks if task.key not in done]
    journal = Journal(journal_path, header, fresh=not arguments.resume)
    try:
        for entry in run_tasks(
            todo, names, options, jobs=arguments.jobs, progress=not arguments.no_progress
        ):
            journal.append(entry)
            done[(entry["system_id"], entry["sample_id"])] = entry
    finally:
        journal.close()
    return done


def merge_main(argv: Sequence[str]) -> int:
    """Entry point of ``sqa score merge SHARD... --output OUT``."""
    parser = argparse.ArgumentParser(
        prog="sqa score merge", description="Combine the outputs of sqa score --shard I/N runs."
    )
    parser.add_argument("shards", nargs="+", help="shard outputs, in shard order")
    parser.add_argument("--output", "-o", required=True, help=".jsonl, .csv or Kaldi dir")
    parser.add_argument("--rank-score", action="store_true", help="add rank_score over all rows")
    parser.add_argument(
        "--rank-metrics", help="NAME[=WEIGHT],... ranked into rank_score (default: all, weight 1)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite the output")
    add_path_argument(parser)
    arguments = parser.parse_args(list(argv))
    from sqa.metrics.outputs import merge_outputs, read_scores

    rank_metrics = None
    if arguments.rank_score or arguments.rank_metrics:
        first = read_scores(arguments.shards[0])
        present = [name for name in (first[0]["metrics"] if first else {}) if name != "rank_score"]
        rank_metrics = parse_rank_metrics(arguments.rank_metrics, present)
    merge_outputs(
        arguments.shards, arguments.output, rank_metrics=rank_metrics, force=arguments.force
    )
    return 0
