"""Kaldi-style data directories.

Files (one entry per line, ``<id> <value>``, ids unique and blank-free):

* ``wav.scp``: ``<id> <path>`` (the path is the rest of the line; relative paths are resolved
  by :func:`sqa.data.records.resolve_path` against the directory). Besides audio files, Kaldi
  archive entries ``foo.ark:1234`` (with the optional package ``kaldiio``) and sample ranges
  ``rec.wav[a:b]`` are read (:mod:`sqa.kaldi_audio`). Kaldi's pipe form ``<id> <command> |`` is
  refused: commands are never run.
* ``segments`` (optional): ``<utt> <recording> <start> <end>`` in seconds. Then the records are
  the segments: each reads only its part of the ``wav.scp`` recording (:mod:`sqa.data.segments`),
  and every other file is keyed by ``<utt>``.
* ``utt2sys``: ``<id> <system>``; without it every record's system is the directory's name.
* ``utt2dur``: ``<id> <seconds>``. The writer lists every record (its ``duration``, else the
  audio header), since the official URGENT 2026 ``collect_metrics.py`` needs each id in it.
* ``<metric>.scp``: ``<id> <value>``, one file per metric (``nan``/empty = missing label).
* ``metric.scp``: ``<id> {json}``, all metrics of one file as a JSON object (the official
  ``collect_metrics.py`` would read it as a metric named ``metric``: leave ``metric_json`` off
  for directories meant for it).
* ``utt2sample`` / ``utt2src`` (written by this suite when needed): the ``sample_id`` when it
  differs from the Kaldi id, and the source ``utterance_id``.

Kaldi ids must be unique, but a record's key is ``(system_id, sample_id)``; when ``sample_id``
repeats across systems (folder layout) the writer uses ``<system>-<sample>`` as the id and keeps
the original ``sample_id`` in ``utt2sample``, so reading back gives the same records.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

from sqa import kaldi_audio
from sqa.audio import audio_duration
from sqa.data.records import (
    AudioRecord,
    check_has_audio,
    check_identifier,
    check_scp_entries,
    check_unique,
    clean_metrics,
    listed_path,
    metric_names,
    parse_float,
    resolve_path,
)
from sqa.data.segments import segment_paths
from sqa.errors import AudioError, DataFormatError, SqaError
from sqa.fileio import atomic_open, check_metric_name

# .scp files of a Kaldi dir that are not metric columns.
NON_METRIC_SCP = frozenset({"wav.scp", "metric.scp", "feats.scp", "cmvn.scp", "vad.scp"})
JSON_METRICS_FILE = "metric.scp"
SEGMENTS_FILE = "segments"


def read_scp(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read ``<id> <rest of line>`` lines into an ordered mapping.

    Raises:
        DataFormatError: A line without a value, or a repeated id.
    """
    entries: dict[str, str] = {}
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            text = line.strip()
            if not text:
                continue
            parts = text.split(maxsplit=1)
            if len(parts) < 2:
                raise DataFormatError(f"{path}:{number}: expected '<id> <value>', got {text!r}")
            identifier, value = parts
            if identifier in entries:
                raise DataFormatError(f"{path}:{number}: duplicate id {identifier!r}")
            entries[identifier] = value.strip()
    return entries


def write_scp(path: str | os.PathLike[str], entries: Mapping[str, str]) -> Path:
    """Write ``<id> <value>`` lines atomically (existing file replaced).

    Raises:
        DataFormatError: An entry that the line format cannot hold (:func:`check_scp_entries`);
            nothing is written then.
    """
    check_scp_entries(entries, str(path))
    with atomic_open(path) as stream:
        for identifier, value in entries.items():
            stream.write(f"{identifier} {value}\n")
    return Path(path)


def _resolve_entry(value: str, directory: Path) -> str:
    """Resolve a ``wav.scp`` value; for ``foo.ark:12`` or ``rec.wav[a:b]`` only the file part."""
    literal = resolve_path(value, directory)
    base, suffix = kaldi_audio.split_suffix(value)
    if not suffix or os.path.exists(literal):
        return literal
    return resolve_path(base, directory) + suffix


def _read_wav_scp(directory: Path) -> dict[str, str]:
    scp = directory / "wav.scp"
    if not scp.is_file():
        raise DataFormatError(f"{directory}: no wav.scp (not a Kaldi data directory)")
    return read_audio_scp(scp)


def read_audio_scp(scp: Path) -> dict[str, str]:
    """``id -> audio path`` of any wav.scp-style file, paths resolved by the path rule.

    Raises:
        DataFormatError: A command pipe, or an archive entry without kaldiio.
    """
    directory = scp.parent
    paths = {}
    for identifier, value in read_scp(scp).items():
        if kaldi_audio.is_pipe(value):
            raise DataFormatError(
                f"{scp}: entry {identifier!r} is a command pipe; pipes are not supported (commands "
                "are never run): write the audio to files and list their paths"
            )
        path = paths[identifier] = _resolve_entry(value, directory)
        archive = kaldi_audio.split_suffix(value)[1].startswith(":")
        if archive and not os.path.exists(path) and not kaldi_audio.kaldiio_available():
            raise DataFormatError(
                f"{scp}: entry {identifier!r} ({value}) is a Kaldi archive entry; "
                f"{kaldi_audio.KALDIIO_HINT}"
            )
    return paths


def _read_optional(
    directory: Path, name: str, known: Mapping[str, str], listing: str = "wav.scp"
) -> dict[str, str]:
    """Read an optional id-keyed file; ids absent from the listing are errors."""
    path = directory / name
    if not path.is_file():
        return {}
    entries = read_scp(path)
    unknown = [identifier for identifier in entries if identifier not in known]
    if unknown:
        raise DataFormatError(f"{path}: ids not in {listing}: {', '.join(unknown[:5])}")
    return entries


def _read_metrics(
    directory: Path, known: Mapping[str, str], listing: str
) -> dict[str, dict[str, float]]:
    """Merge ``metric.scp`` (JSON) and every ``<metric>.scp``; conflicting values are errors."""
    metrics: dict[str, dict[str, float]] = {identifier: {} for identifier in known}
    json_file = directory / JSON_METRICS_FILE
    for identifier, text in _read_optional(directory, JSON_METRICS_FILE, known, listing).items():
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{json_file}: {identifier}: {error.msg}") from None
        if not isinstance(values, dict):
            raise DataFormatError(f"{json_file}: {identifier}: expected a JSON object")
        metrics[identifier].update(clean_metrics(values, f"{json_file}:{identifier}"))
    for path in sorted(directory.glob("*.scp")):
        if path.name in NON_METRIC_SCP:
            continue
        name = path.stem
        for identifier, text in _read_optional(directory, path.name, known, listing).items():
            value = parse_float(text, f"{path}:{identifier}")
            if math.isnan(value):
                continue
            previous = metrics[identifier].get(name)
            if previous is not None and previous != value:
                raise DataFormatError(
                    f"{path}: {identifier}: {name}={value} disagrees with metric.scp ({previous})"
                )
            metrics[identifier][name] = value
    return metrics


def _listing(folder: Path) -> tuple[dict[str, str], dict[str, float], str]:
    """Id -> audio path, known lengths and the listing's name (``segments`` or ``wav.scp``)."""
    paths = _read_wav_scp(folder)
    source = folder / SEGMENTS_FILE
    if not source.is_file():
        return paths, {}, "wav.scp"
    return (*segment_paths(source, read_scp(source), paths), SEGMENTS_FILE)


def read_kaldi_entries(directory: str | os.PathLike[str]) -> list[tuple[str, AudioRecord]]:
    """Read a Kaldi-style data directory as ``(Kaldi id, record)`` pairs.

    The ids are those of ``wav.scp`` (of ``segments`` when there is one); other tools key their
    outputs by them (VERSA results, for example).

    Returns:
        Pairs in ``wav.scp`` (``segments``) order.

    Raises:
        DataFormatError: Missing ``wav.scp``, pipes, archive entries without kaldiio, bad lines,
            duplicate ids or keys, ids in side files that the listing lacks, non-numeric values
            or bad segments.
    """
    folder = Path(directory)
    paths, lengths, listing = _listing(folder)
    side = {
        name: _read_optional(folder, name, paths, listing)
        for name in ("utt2sys", "utt2dur", "utt2sample", "utt2src")
    }
    metrics = _read_metrics(folder, paths, listing)
    default_system = folder.resolve().name
    entries = []
    for identifier, path in paths.items():
        duration = parse_float(
            side["utt2dur"].get(identifier), f"{folder / 'utt2dur'}:{identifier}"
        )
        if math.isnan(duration):
            duration = lengths.get(identifier, math.nan)
        record = AudioRecord(
            sample_id=side["utt2sample"].get(identifier, identifier),
            system_id=side["utt2sys"].get(identifier, default_system),
            path=path,
            utterance_id=side["utt2src"].get(identifier),
            duration=None if math.isnan(duration) else duration,
            metrics=metrics[identifier],
        )
        entries.append((identifier, record))
    check_unique([record for _, record in entries], str(folder))
    return entries


def read_kaldi_dir(directory: str | os.PathLike[str]) -> list[AudioRecord]:
    """Read a Kaldi-style data directory (see the module docstring for the files).

    Returns:
        Records in ``wav.scp`` order (``segments`` order when there is one).

    Raises:
        DataFormatError: As :func:`read_kaldi_entries`.
    """
    return [record for _, record in read_kaldi_entries(directory)]


def kaldi_ids(records: list[AudioRecord]) -> list[str]:
    """Kaldi ids for records: ``sample_id`` when unique, else ``<system_id>-<sample_id>``."""
    sample_ids = [record.sample_id for record in records]
    if len(set(sample_ids)) == len(sample_ids):
        return sample_ids
    return [f"{record.system_id}-{record.sample_id}" for record in records]


def check_kaldi_records(records: list[AudioRecord], directory: str | os.PathLike[str]) -> list[str]:
    """The Kaldi ids of records, refusing records a Kaldi dir cannot hold (before any work).

    Commands that end by writing a Kaldi dir call this first, so that a file name with a space
    stops the run before scoring rather than after it.

    Returns:
        The ids, as :func:`kaldi_ids` gives them.

    Raises:
        DataFormatError: Duplicate keys, or ids, system ids or utterance ids that are empty or
            contain whitespace (Kaldi ids cannot).
    """
    folder = str(directory)
    check_unique(records, folder)
    ids = kaldi_ids(records)
    if len(set(ids)) != len(ids):
        raise DataFormatError(f"{folder}: records cannot be given unique Kaldi ids")
    check_scp_entries(dict.fromkeys(ids, "-"), folder)
    for record in records:
        check_identifier(record.system_id, "system id", folder)
        if record.utterance_id is not None:
            check_identifier(record.utterance_id, "utterance id", folder)
    return ids


def write_kaldi_dir(
    directory: str | os.PathLike[str],
    records: Iterable[AudioRecord],
    *,
    force: bool = False,
    metric_json: bool = False,
) -> Path:
    """Write records as a Kaldi-style data directory.

    Args:
        directory: Destination folder (created if needed).
        records: Records with unique ``(system_id, sample_id)`` keys.
        force: Allow writing into a folder that already has a ``wav.scp``.
        metric_json: Write all metrics to ``metric.scp`` (JSON lines) instead of one
            ``<metric>.scp`` per metric.

    Returns:
        The directory.

    Raises:
        DataFormatError: Duplicate keys, or ids/systems containing whitespace.
        SqaError: The folder already holds a ``wav.scp`` and ``force`` is false.
    """
    items = list(records)
    folder = Path(directory)
    replacing = (folder / "wav.scp").exists()
    if replacing and not force:
        raise SqaError(f"{folder / 'wav.scp'} exists; pass --force to overwrite it")
    ids = check_kaldi_records(items, folder)
    check_has_audio(items, str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    if replacing:
        _remove_stale_metric_files(folder)
    paths = {i: listed_path(r.path, folder) for i, r in zip(ids, items, strict=True)}
    write_scp(folder / "wav.scp", paths)
    write_scp(folder / "utt2sys", {i: r.system_id for i, r in zip(ids, items, strict=True)})
    _write_side_files(folder, ids, items)
    _write_metric_files(folder, ids, items, metric_json)
    return folder


def _remove_stale_metric_files(folder: Path) -> None:
    """Drop metric files of a previous dataset so they are not merged into the new one."""
    for path in folder.glob("*.scp"):
        if path.name not in NON_METRIC_SCP or path.name == JSON_METRICS_FILE:
            path.unlink()
    # A stale segments file would re-cut the new wav.scp entries.
    for name in ("utt2dur", "utt2sample", "utt2src", SEGMENTS_FILE):
        (folder / name).unlink(missing_ok=True)


def _durations(folder: Path, pairs: list[tuple[str, AudioRecord]]) -> dict[str, str]:
    """``utt2dur`` values: each record's duration, else its audio's (warns about unreadable)."""
    durations: dict[str, str] = {}
    unknown: list[str] = []
    for identifier, record in pairs:
        seconds = record.duration
        if seconds is None:
            try:
                seconds = audio_duration(record.path)
            except AudioError:
                unknown.append(identifier)
                continue
        durations[identifier] = repr(float(seconds))
    if unknown:
        warnings.warn(
            f"{folder / 'utt2dur'}: no duration for {len(unknown)} id(s) whose audio cannot be "
            f"read (e.g. {unknown[0]}); the official collect_metrics.py needs every id there",
            stacklevel=4,
        )
    return durations


def _write_side_files(folder: Path, ids: list[str], items: list[AudioRecord]) -> None:
    pairs = list(zip(ids, items, strict=True))
    durations = _durations(folder, pairs)
    if durations:
        write_scp(folder / "utt2dur", durations)
    if any(i != r.sample_id for i, r in pairs):
        write_scp(folder / "utt2sample", {i: r.sample_id for i, r in pairs})
    sources = {i: r.utterance_id for i, r in pairs if r.utterance_id is not None}
    if sources:
        write_scp(folder / "utt2src", sources)


def _write_metric_files(
    folder: Path, ids: list[str], items: list[AudioRecord], metric_json: bool
) -> None:
    pairs = list(zip(ids, items, strict=True))
    if metric_json:
        lines = {
            i: json.dumps({k: v for k, v in r.metrics.items() if not math.isnan(v)})
            for i, r in pairs
            if r.metrics
        }
        if lines:
            write_scp(folder / JSON_METRICS_FILE, lines)
        return
    for name in metric_names(items):
        file_name = f"{check_metric_name(name, str(folder))}.scp"
        if file_name in NON_METRIC_SCP:
            raise DataFormatError(f"{folder}: metric name {name!r} cannot be a <metric>.scp file")
        values = {
            i: repr(float(r.metrics[name]))
            for i, r in pairs
            if name in r.metrics and not math.isnan(r.metrics[name])
        }
        if values:
            write_scp(folder / file_name, values)
