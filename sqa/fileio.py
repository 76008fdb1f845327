"""Atomic file output and CSV/JSONL tables chosen by file suffix.

Every output of the suite goes through :func:`atomic_open`, so an interrupted job never leaves a
partial file behind: data is written to a temporary file in the destination folder, flushed, fsynced
and renamed over the target in one step.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from sqa.errors import DataFormatError, OutputError, SqaError

TABLE_SUFFIXES = (".csv", ".jsonl")


def check_writable(path: str | os.PathLike[str], force: bool) -> Path:
    """Refuse to overwrite an existing output unless ``force`` is set.

    Args:
        path: Destination file.
        force: Whether an existing file may be replaced.

    Returns:
        The destination as a :class:`Path`.

    Raises:
        SqaError: If the file exists and ``force`` is false.
    """
    destination = Path(path)
    if destination.exists() and not force:
        raise SqaError(f"{destination} exists; pass --force to overwrite it")
    return destination


# Names that come from input files (metric names of a checkpoint or listing) and become file
# names: letters, digits and ``_ . + -``, not starting with a dot.
_PLAIN_NAME = re.compile(r"\w[\w.+-]*")


def check_metric_name(name: object, source: str) -> str:
    """A metric name from a file, checked before it names a file (``<metric>.scp``).

    Args:
        name: The name as read.
        source: The file it came from, for the message.

    Returns:
        The name.

    Raises:
        DataFormatError: Anything but letters, digits and ``_ . + -`` (not starting with a dot).
    """
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
        raise DataFormatError(
            f"{source}: metric name {str(name)[:80]!r} is not a plain name (letters, digits, "
            "'_', '.', '+', '-'), so it cannot name a file"
        )
    return name


def inside(folder: str | os.PathLike[str], *names: str, suffix: str = "") -> Path:
    """``folder/names[0]/.../names[-1]+suffix``, refusing names that could leave ``folder``.

    The one guard for ids read from listings (``sample_id``, ``system_id`` of data.jsonl,
    wav.scp, CSV, ...) that a command turns into output paths: each name must be one plain path
    component, so nothing is ever written outside the output folder.

    Raises:
        DataFormatError: An empty name, ``.``/``..``, or one with a path separator or NUL.
    """
    for name in names:
        separators = {"/", "\\", "\0", os.sep, os.altsep or "/"}
        if not name or name in (".", "..") or any(mark in name for mark in separators):
            raise DataFormatError(
                f"{str(name)[:80]!r} cannot name a file inside {folder} (ids used as file names "
                "must not be empty, '.', '..' or contain '/' or '\\')"
            )
    return Path(folder).joinpath(*names[:-1], names[-1] + suffix) if names else Path(folder)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# errno values that mean "this output cannot be written" when a write inside the block fails
# (other OS errors there may come from reading an input, so they are left as they are).
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` only if the block finishes without error.

    Whatever stops the block (an error, Ctrl-C, SIGTERM, a full disk), the temporary file is
    removed and an existing ``path`` is left as it was.

    Args:
        path: Final destination.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        encoding: Text encoding (ignored in binary mode).

    Yields:
        A writable file object.

    Raises:
        OutputError: ``path`` cannot be written (disk full, read-only or removed folder, ...).
    """
    destination = Path(path)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
        )
    except OSError as error:
        raise OutputError(destination, error) from error
    written = False
    try:
        with os.fdopen(handle, mode, encoding=None if "b" in mode else encoding) as stream:
            yield stream
            written = True
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp creates 0600 files; results are meant to be shared like any other output
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, destination)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if _is_write_failure(error, written):
            raise OutputError(destination, error) from error
        raise


def _is_write_failure(error: BaseException, after_block: bool) -> bool:
    """Whether an error while writing an output is the output's failure: any OS error once the
    caller's block is done, and inside it those that only writing gives (reading an input can
    fail there too, and is left as it is)."""
    if not isinstance(error, OSError) or isinstance(error, SqaError):
        return False
    return after_block or error.errno in OUTPUT_ERRNOS


def _json_safe(value: Any) -> Any:
    """Make a value JSON-serialisable: numpy scalars become Python numbers, NaN/inf ``None``.

    ``NaN`` is not JSON: strict parsers (``jq``, JavaScript, Go, Rust) refuse the token. A missing
    value is written as ``null`` (read back as NaN everywhere here), never as 0.0.
    """
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def dumps_json(value: Any, **options: Any) -> str:
    """``json.dumps`` that writes strict JSON: NaN and infinities become ``null``.

    Args:
        value: Any JSON-like structure (numpy scalars allowed).
        **options: Passed to :func:`json.dumps` (``indent``, ``default``, ...).
    """
    options.setdefault("ensure_ascii", False)
    return json.dumps(_json_safe(value), allow_nan=False, **options)


def flatten_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten a nested ``metrics`` mapping into top-level columns (for CSV output)."""
    flat = {key: value for key, value in row.items() if key != "metrics"}
    for name, value in (row.get("metrics") or {}).items():
        flat[name] = value
    return flat


def format_jsonl_line(row: Mapping[str, Any]) -> str:
    """Serialise one row as a JSON line (no trailing newline)."""
    return dumps_json(row)


def write_rows(
    path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]], *, force: bool = False
) -> Path:
    """Write rows atomically as CSV or JSONL, chosen by the suffix of ``path``.

    For CSV, a nested ``metrics`` mapping is flattened into columns; the header is the union of
    all keys in first-seen order and missing cells are left empty (read back as NaN).

    Args:
        path: Destination ending in ``.csv`` or ``.jsonl``.
        rows: Mappings to write.
        force: Overwrite an existing file.

    Returns:
        The destination path.
    """
    destination = check_writable(path, force)
    suffix = destination.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise SqaError(f"cannot choose an output format for {destination}: use .csv or .jsonl")
    materialised = list(rows)
    with atomic_open(destination) as stream:
        if suffix == ".jsonl":
            for row in materialised:
                stream.write(format_jsonl_line(row) + "\n")
        else:
            flat_rows = [flatten_row(row) for row in materialised]
            header: dict[str, None] = {}
            for row in flat_rows:
                header.update(dict.fromkeys(row))
            writer = csv.DictWriter(stream, fieldnames=list(header), lineterminator="\n")
            writer.writeheader()
            for row in flat_rows:
                writer.writerow({key: _csv_cell(value) for key, value in row.items()})
    return destination


def _csv_cell(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return _json_safe(value)


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSONL file; blank lines are ignored and a bad line is a :class:`DataFormatError`."""
    rows = []
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DataFormatError(f"{path}:{number}: not valid JSON ({error.msg})") from None
    return rows


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a CSV or JSONL table written by :func:`write_rows` (CSV cells stay strings)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl(path)
    if suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as stream:
            return [dict(row) for row in csv.DictReader(stream)]
    raise DataFormatError(f"cannot read {path}: expected a .csv or .jsonl file")
