"""Reading text members of an untrusted zip (a Track-2 submission) into memory, never to disk.

A submission zip comes from someone else, so it is checked before anything is decompressed: every
member name must be relative and free of ``..`` (nothing is ever extracted, but such a name is
refused rather than guessed at), no name may appear twice (``ZipFile.read`` would silently take the
last one), and the wanted members must be unencrypted, use a compression method Python reads, and
declare at most :data:`MAX_MEMBER_BYTES` with a compression ratio of at most
:data:`MAX_COMPRESSION_RATIO` (a zip bomb is refused from its directory, without inflating it).
Reading stops at the declared size whatever the data says. Every problem is one short line; text
quoted from the file is cut by :func:`quote`.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

from sqa.errors import DataFormatError

# A Track-2 mos.scp holds a few thousand lines of ~30 bytes; 64 MiB is thousands of times that.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
# Deflated text of scores compresses a few times; a bomb compresses hundreds of times or more.
MAX_COMPRESSION_RATIO = 100
# Below this size the ratio is not checked (a small repetitive member is harmless).
RATIO_CHECK_FROM_BYTES = 1024 * 1024
MAX_MEMBERS = 10_000
QUOTE_LIMIT = 60
READABLE_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}


def quote(text: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of text from a file, cut to about ``limit`` characters (keeps errors short)."""
    shown = repr(text[: limit + 1] if isinstance(text, str) else text)  # no copy of a huge text
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def _unsafe_name(name: str) -> bool:
    """Absolute, drive-qualified or containing a ``..`` component (either separator)."""
    parts = PureWindowsPath(name).parts
    return (
        name.startswith(("/", "\\"))
        or PurePosixPath(name).is_absolute()
        or bool(PureWindowsPath(name).drive)
        or ".." in parts
        or ".." in PurePosixPath(name).parts
    )


def _directory_problems(entries: Sequence[zipfile.ZipInfo]) -> list[str]:
    """Problems of the zip's directory as a whole: too many, unsafe or repeated names."""
    if len(entries) > MAX_MEMBERS:
        return [f"the zip lists {len(entries)} members (at most {MAX_MEMBERS} are read)"]
    problems = [
        f"member name {quote(entry.filename)} is absolute or contains '..'"
        for entry in entries
        if _unsafe_name(entry.filename)
    ]
    counts = Counter(entry.filename for entry in entries)
    problems += [
        f"member {quote(name)} appears {count} times in the zip"
        for name, count in counts.items()
        if count > 1
    ]
    return problems


def _member_problem(entry: zipfile.ZipInfo, limit: int) -> str | None:
    """Why ``entry`` is not read (from its directory record alone), or ``None``."""
    name = quote(entry.filename)
    if entry.flag_bits & 0x1:
        return f"{name} is encrypted"
    if entry.compress_type not in READABLE_METHODS:
        return f"{name} uses compression method {entry.compress_type}, which is not supported"
    if entry.file_size > limit:
        return f"{name} declares {entry.file_size} bytes uncompressed (at most {limit} are read)"
    ratio = entry.file_size / max(entry.compress_size, 1)
    if entry.file_size >= RATIO_CHECK_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
        return (
            f"{name} would inflate {ratio:.0f} times (at most {MAX_COMPRESSION_RATIO}): "
            "refused as a possible zip bomb"
        )
    return None


def _read_member(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> str:
    """The member as UTF-8 text, reading no more than its declared size."""
    with archive.open(entry) as stream:
        data = stream.read(entry.file_size + 1)
    if len(data) > entry.file_size:  # zipfile stops at the declared size; never trust data
        raise DataFormatError(f"{quote(entry.filename)} holds more than its declared size")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataFormatError(f"{quote(entry.filename)} is not UTF-8 text") from None


def read_text_members(
    path: str | os.PathLike[str], names: Sequence[str], *, limit: int = MAX_MEMBER_BYTES
) -> tuple[dict[str, str], list[str]]:
    """The text of the root members ``names`` of a zip, and every problem found on the way.

    Args:
        path: The zip.
        names: Members to read (root-level names such as ``mos.scp``).
        limit: Largest declared uncompressed size read, in bytes.

    Returns:
        ``(name -> text for the members read, problems)``; nothing is read when the zip's
        directory has a problem, and a member with a problem is left out.
    """
    source = Path(path)
    try:
        with zipfile.ZipFile(source) as archive:
            entries = archive.infolist()
            problems = _directory_problems(entries)
            if problems:
                return {}, problems
            by_name = {entry.filename: entry for entry in entries}
            texts: dict[str, str] = {}
            for name in names:
                entry = by_name.get(name)
                problem = (
                    f"the zip lacks {name} at its root"
                    if entry is None
                    else _member_problem(entry, limit)
                )
                if problem is None and entry is not None:
                    try:
                        texts[name] = _read_member(archive, entry)
                    except DataFormatError as error:
                        problem = str(error)
                if problem is not None:
                    problems.append(problem)
            return texts, problems
    except Exception as error:  # BadZipFile, a truncated file, a codec error inside the data...
        detail = " ".join(str(error).split())[:200] or type(error).__name__
        return {}, [f"not a readable zip ({detail})"]  # callers name the file
