"""The in-memory form shared by every data format: one :class:`AudioRecord` per audio file.

Conventions used by all readers and writers in :mod:`sqa.data`:

* The unique key of a file is ``(system_id, sample_id)``; a repeated key is a
  :class:`sqa.errors.DataFormatError`.
* ``utterance_id`` names the source recording: homologous files (the same noisy input processed
  by different systems) share it. In the folder layout ``sample_id == utterance_id`` = file stem.
* A missing metric label is simply absent from ``metrics``; :func:`metric_matrix` reads it as
  NaN. Readers drop NaN values, writers skip them, so "missing" has one representation.
* Relative audio paths in a listing file are resolved against the folder of that file, then the
  working directory; written paths are absolute (:func:`resolve_path`, :func:`listed_path`).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sqa.data.archives import quote
from sqa.errors import DataFormatError

# Cell spellings read as a missing value.
MISSING_TEXT = frozenset({"", "nan", "none", "null", "na", "n/a"})
EXAMPLES_SHOWN = 5  # offending entries named in an error message


@dataclass
class AudioRecord:
    """One audio file and what is known about it.

    Attributes:
        sample_id: Identifier of the file within its system.
        system_id: The system (team, model, condition) that produced it.
        path: Location of the audio file.
        utterance_id: Source recording shared by homologous files, or ``None``.
        duration: Length in seconds when known.
        metrics: Metric name -> value (labels or predictions); absent = missing.
        listeners: Number of listeners behind a ``mos`` label (listening-test CSVs), if known;
            kept apart from ``metrics`` so that it is never evaluated or trained as a metric.
    """

    sample_id: str
    system_id: str
    path: str
    utterance_id: str | None = None
    duration: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    listeners: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The unique key ``(system_id, sample_id)``."""
        return (self.system_id, self.sample_id)


def parse_float(text: object, where: str) -> float:
    """Parse a metric or duration cell; missing spellings (empty, ``nan``, ``null``) give NaN.

    Args:
        text: The cell (string, number or ``None``).
        where: Location for the error message (``file:line``).

    Raises:
        DataFormatError: If the cell is not a number.
    """
    if text is None:
        return math.nan
    if isinstance(text, bool):
        raise DataFormatError(f"{where}: expected a number, got {text!r}")
    if isinstance(text, (int, float)):
        return float(text)
    cleaned = str(text).strip()
    if cleaned.lower() in MISSING_TEXT:
        return math.nan
    try:
        return float(cleaned)
    except ValueError:
        # The cell comes from a file: quoted short, so one hostile cell is not a huge message.
        raise DataFormatError(f"{where}: expected a number, got {quote(cleaned)}") from None


def clean_metrics(values: dict[str, object], where: str) -> dict[str, float]:
    """Parse a metric mapping to floats, dropping missing (NaN) values."""
    parsed = {
        str(name): parse_float(value, f"{where} metric {name!r}") for name, value in values.items()
    }
    return {name: value for name, value in parsed.items() if not math.isnan(value)}


# How relative audio paths in listing files are read and how written paths are spelled.
PATH_RULES = ("auto", "relative-to-listing", "relative-to-cwd", "absolute")
PATH_RULE_HELP = (
    "how audio paths in listing files are read and written: auto (default) reads a relative "
    "path against the listing's folder and, when no file is there, against the working "
    "directory, and writes absolute paths; relative-to-listing / relative-to-cwd read and write "
    "relative paths against that folder; absolute writes absolute paths and refuses relative ones"
)
_path_rule = ["auto"]
_warned_rules: set[str] = set()


def set_path_rule(rule: str) -> None:
    """Choose the process-wide path rule (one of :data:`PATH_RULES`; the CLI's ``--paths``)."""
    if rule not in PATH_RULES:
        expected = ", ".join(PATH_RULES)
        raise DataFormatError(f"unknown path rule {rule!r}; expected one of {expected}")
    _path_rule[0] = rule
    _warned_rules.clear()


def path_rule() -> str:
    """The path rule in force (:func:`set_path_rule`)."""
    return _path_rule[0]


def _warn_rule_once(rule: str, message: str) -> None:
    if rule not in _warned_rules:
        _warned_rules.add(rule)
        warnings.warn(message, stacklevel=3)


def resolve_path(text: str, base: Path) -> str:
    """Resolve a listed audio path under the path rule in force (see :data:`PATH_RULE_HELP`).

    Absolute paths stay. Under ``auto`` a relative path joins ``base`` (the listing's folder)
    when that file exists, else the working directory when the file exists there (as the
    official URGENT, Kaldi, ESPnet and VERSA loaders open it; warned once), else ``base``.

    Raises:
        DataFormatError: A relative path under the ``absolute`` rule.
    """
    expanded = os.path.expanduser(text)
    if not expanded or os.path.isabs(expanded):
        return expanded  # "" = a label-only row (no audio), kept as such
    rule = path_rule()
    if rule == "absolute":
        raise DataFormatError(f"{text!r} is a relative path (the path rule is 'absolute')")
    if rule == "relative-to-cwd":
        return os.path.abspath(expanded)
    beside_listing = str(base / expanded)
    if rule == "relative-to-listing" or os.path.exists(beside_listing):
        return beside_listing
    if os.path.exists(expanded):
        _warn_rule_once(
            "cwd",
            f"relative audio paths such as {text!r} were not found beside the listing ({base}) "
            "and were read relative to the working directory (choose with --paths)",
        )
        return os.path.abspath(expanded)
    return beside_listing


def listed_path(path: str, listing_folder: str | os.PathLike[str]) -> str:
    """The spelling of ``path`` in a listing file in ``listing_folder`` under the path rule.

    ``auto`` and ``absolute`` write absolute paths, which every official loader (opening paths as
    given) and :func:`resolve_path` read from any working directory; ``relative-to-listing``
    writes paths relative to the listing's folder (a data set folder that can be moved as a
    whole); ``relative-to-cwd`` writes them relative to the working directory, as the official
    URGENT data preparation does.
    """
    if not path:
        return ""  # a label-only record has no audio to name
    absolute = os.path.abspath(os.path.expanduser(path))
    rule = path_rule()
    if rule == "relative-to-listing":
        return os.path.relpath(absolute, os.path.abspath(listing_folder))
    if rule == "relative-to-cwd":
        return os.path.relpath(absolute)
    return absolute


def check_unique(records: Iterable[AudioRecord], source: str) -> None:
    """Raise :class:`DataFormatError` if a ``(system_id, sample_id)`` key repeats.

    Args:
        records: The records to check.
        source: File or folder named in the error message.
    """
    seen: set[tuple[str, str]] = set()
    repeated: list[str] = []
    for record in records:
        if record.key in seen:
            repeated.append(f"{record.system_id}/{record.sample_id}")
        seen.add(record.key)
    if repeated:
        shown = ", ".join(repeated[:5]) + (" ..." if len(repeated) > 5 else "")
        raise DataFormatError(f"{source}: {len(repeated)} duplicate id(s): {shown}")


def check_has_audio(records: Iterable[AudioRecord], destination: str) -> None:
    """Refuse label-only records (no audio path) for a format whose listing needs a path.

    Raises:
        DataFormatError: Naming the first such record.
    """
    for record in records:
        if not record.path:
            raise DataFormatError(
                f"{destination}: {record.system_id}/{record.sample_id} has no audio path "
                "(a label-only reference row); this format lists audio files"
            )


def check_identifier(value: str, what: str, source: str) -> None:
    """Identifiers written to whitespace-separated files must be non-empty and blank-free."""
    if not value or any(character.isspace() for character in value):
        raise DataFormatError(f"{source}: {what} {value!r} is empty or contains whitespace")


def check_scp_entries(
    entries: Mapping[str, str],
    source: str,
    remedy: str = "rename those files, or write a .jsonl or .csv output instead",
) -> None:
    """Refuse what a ``<id> <value>`` line cannot hold, so that reading gives back the same entries.

    Kaldi ids are whitespace-free (the id ends at the first blank); the value is the rest of the
    line, so it may contain blanks (a path with spaces) but no line break and, since readers strip
    it, no leading or trailing blank.

    Args:
        entries: Id -> value.
        source: The file or folder written, for the message.
        remedy: What the user can do about an id with a blank, for the message.

    Raises:
        DataFormatError: Naming how many entries are affected and a few of them.
    """
    blank_ids = [key for key in entries if not key or any(c.isspace() for c in key)]
    if blank_ids:
        shown = ", ".join(repr(key) for key in blank_ids[:EXAMPLES_SHOWN])
        raise DataFormatError(
            f"{source}: {len(blank_ids)} Kaldi id(s) are empty or contain whitespace ({shown}); "
            f"Kaldi ids cannot: {remedy}"
        )
    for key, value in entries.items():
        if "\n" in value or "\r" in value or value != value.strip():
            raise DataFormatError(
                f"{source}: the value of {key!r} ({value!r}) has a line break or leading or "
                "trailing blanks, which a '<id> <value>' line cannot hold"
            )


def metric_names(records: Iterable[AudioRecord]) -> list[str]:
    """All metric names present in ``records``, in first-seen order."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record.metrics))
    return list(names)


def metric_matrix(records: Sequence[AudioRecord], names: Sequence[str]) -> np.ndarray:
    """Labels as a float64 matrix ``(N, M)`` with NaN where a record lacks a metric.

    Args:
        records: ``N`` records.
        names: ``M`` metric names (columns, in this order).
    """
    matrix = np.full((len(records), len(names)), np.nan, dtype=np.float64)
    for row, record in enumerate(records):
        for column, name in enumerate(names):
            if name in record.metrics:
                matrix[row, column] = record.metrics[name]
    return matrix


def records_by_system(records: Iterable[AudioRecord]) -> dict[str, list[AudioRecord]]:
    """Group records by ``system_id`` (systems in first-seen order, records in input order)."""
    groups: dict[str, list[AudioRecord]] = {}
    for record in records:
        groups.setdefault(record.system_id, []).append(record)
    return groups
