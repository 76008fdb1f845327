"""Kaldi-style data directories.

Files (one entry per line, ``<id> <value>``, ids unique and blank-free):

* ``wav.scp``: ``<id> <path>`` (the path is the rest of the line; relative paths are resolved
  against the directory). Kaldi's pipe form ``<id> <command> |`` is refused.
* ``utt2sys``: ``<id> <system>``; without it every record's system is the directory's name.
* ``utt2dur``: ``<id> <seconds>``.
* ``<metric>.scp``: ``<id> <value>``, one file per metric (``nan``/empty = missing label).
* ``metric.scp``: ``<id> {json}``, all metrics of one file as a JSON object.
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
from collections.abc import Iterable, Mapping
from pathlib import Path

from sqa.data.records import (
    AudioRecord,
    check_identifier,
    check_unique,
    clean_metrics,
    listed_path,
    metric_names,
    parse_float,
    resolve_path,
)
from sqa.errors import DataFormatError, SqaError
from sqa.fileio import atomic_open

# .scp files of a Kaldi dir that are not metric columns.
NON_METRIC_SCP = frozenset({"wav.scp", "metric.scp", "feats.scp", "cmvn.scp", "vad.scp"})
JSON_METRICS_FILE = "metric.scp"


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
    """Write ``<id> <value>`` lines atomically (existing file replaced)."""
    with atomic_open(path) as stream:
        for identifier, value in entries.items():
            stream.write(f"{identifier} {value}\n")
    return Path(path)


def _read_wav_scp(directory: Path) -> dict[str, str]:
    scp = directory / "wav.scp"
    if not scp.is_file():
        raise DataFormatError(f"{directory}: no wav.scp (not a Kaldi data directory)")
    paths = read_scp(scp)
    for identifier, value in paths.items():
        if value.endswith("|"):
            raise DataFormatError(
                f"{scp}: entry {identifier!r} is a command pipe; pipes are not supported, "
                "list audio file paths"
            )
    return {identifier: resolve_path(value, directory) for identifier, value in paths.items()}


def _read_optional(directory: Path, name: str, known: Mapping[str, str]) -> dict[str, str]:
    """Read an optional id-keyed file; ids absent from wav.scp are errors."""
    path = directory / name
    if not path.is_file():
        return {}
    entries = read_scp(path)
    unknown = [identifier for identifier in entries if identifier not in known]
    if unknown:
        raise DataFormatError(f"{path}: ids not in wav.scp: {', '.join(unknown[:5])}")
    return entries


def _read_metrics(directory: Path, known: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """Merge ``metric.scp`` (JSON) and every ``<metric>.scp``; conflicting values are errors."""
    metrics: dict[str, dict[str, float]] = {identifier: {} for identifier in known}
    for identifier, text in _read_optional(directory, JSON_METRICS_FILE, known).items():
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataFormatError(
                f"{directory / JSON_METRICS_FILE}: {identifier}: {error.msg}"
            ) from None
        if not isinstance(values, dict):
            raise DataFormatError(
                f"{directory / JSON_METRICS_FILE}: {identifier}: expected a JSON object"
            )
        metrics[identifier].update(
            clean_metrics(values, f"{directory / JSON_METRICS_FILE}:{identifier}")
        )
    for path in sorted(directory.glob("*.scp")):
        if path.name in NON_METRIC_SCP:
            continue
        name = path.stem
        for identifier, text in _read_optional(directory, path.name, known).items():
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


def read_kaldi_dir(directory: str | os.PathLike[str]) -> list[AudioRecord]:
    """Read a Kaldi-style data directory (see the module docstring for the files).

    Returns:
        Records in ``wav.scp`` order.

    Raises:
        DataFormatError: Missing ``wav.scp``, pipes, bad lines, duplicate ids or keys, ids in
            side files that ``wav.scp`` lacks, or non-numeric values.
    """
    folder = Path(directory)
    paths = _read_wav_scp(folder)
    systems = _read_optional(folder, "utt2sys", paths)
    durations = _read_optional(folder, "utt2dur", paths)
    samples = _read_optional(folder, "utt2sample", paths)
    sources = _read_optional(folder, "utt2src", paths)
    metrics = _read_metrics(folder, paths)
    default_system = folder.resolve().name
    records = []
    for identifier, path in paths.items():
        duration = parse_float(durations.get(identifier), f"{folder / 'utt2dur'}:{identifier}")
        records.append(
            AudioRecord(
                sample_id=samples.get(identifier, identifier),
                system_id=systems.get(identifier, default_system),
                path=path,
                utterance_id=sources.get(identifier),
                duration=None if math.isnan(duration) else duration,
                metrics=metrics[identifier],
            )
        )
    check_unique(records, str(folder))
    return records


def kaldi_ids(records: list[AudioRecord]) -> list[str]:
    """Kaldi ids for records: ``sample_id`` when unique, else ``<system_id>-<sample_id>``."""
    sample_ids = [record.sample_id for record in records]
    if len(set(sample_ids)) == len(sample_ids):
        return sample_ids
    return [f"{record.system_id}-{record.sample_id}" for record in records]


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
    check_unique(items, str(folder))
    replacing = (folder / "wav.scp").exists()
    if replacing and not force:
        raise SqaError(f"{folder / 'wav.scp'} exists; pass --force to overwrite it")
    ids = kaldi_ids(items)
    if len(set(ids)) != len(ids):
        raise DataFormatError(f"{folder}: records cannot be given unique Kaldi ids")
    for identifier, record in zip(ids, items, strict=True):
        check_identifier(identifier, "id", str(folder))
        check_identifier(record.system_id, "system id", str(folder))
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
    for name in ("utt2dur", "utt2sample", "utt2src"):
        (folder / name).unlink(missing_ok=True)


def _write_side_files(folder: Path, ids: list[str], items: list[AudioRecord]) -> None:
    pairs = list(zip(ids, items, strict=True))
    durations = {i: repr(float(r.duration)) for i, r in pairs if r.duration is not None}
    if durations:
        write_scp(folder / "utt2dur", durations)
    if any(i != r.sample_id for i, r in pairs):
        write_scp(folder / "utt2sample", {i: r.sample_id for i, r in pairs})
    sources = {i: r.utterance_id for i, r in pairs if r.utterance_id is not None}
    if sources:
        for value in sources.values():
            check_identifier(value, "utterance id", str(folder))
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
        file_name = f"{name}.scp"
        if file_name in NON_METRIC_SCP or "/" in name or not name:
            raise DataFormatError(f"{folder}: metric name {name!r} cannot be a <metric>.scp file")
        values = {
            i: repr(float(r.metrics[name]))
            for i, r in pairs
            if name in r.metrics and not math.isnan(r.metrics[name])
        }
        if values:
            write_scp(folder / file_name, values)
