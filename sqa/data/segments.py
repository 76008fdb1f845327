"""Kaldi ``segments`` files: each line names a part of a recording, read as a sample range.

A line ``<utt> <recording> <start> <end>`` (seconds; ``end`` = -1 means the end of the recording)
becomes the path ``<recording path>[a:b]`` of :mod:`sqa.kaldi_audio`, which every audio loader of
the suite reads as that part only. Samples are counted as Kaldi's ``extract-segments`` does: from
``floor(start * rate)`` to ``floor(end * rate)`` excluded. An end up to
:data:`SEGMENT_OVERSHOOT` seconds past the recording is clipped to it; a segment further out,
empty or with bad times is an error (never silently the whole recording).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from sqa import kaldi_audio
from sqa.data.records import parse_float
from sqa.errors import AudioError, DataFormatError

# Kaldi's extract-segments clips an end this far (seconds) past the recording to its length.
SEGMENT_OVERSHOOT = 0.5


def _recording_info(path: str, where: str) -> tuple[int, int]:
    """``(frames, rate)`` of a recording named by ``segments``."""
    try:
        return kaldi_audio.audio_info(path)
    except AudioError as error:
        raise DataFormatError(f"{where}: {error}") from None


def segment_samples(times: tuple[str, str], frames: int, rate: int, where: str) -> tuple[int, int]:
    """First sample and one past the last of a segment.

    Args:
        times: ``(start, end)`` as written in the file, in seconds.
        frames: Length of the recording in samples.
        rate: Its sample rate in Hz.
        where: ``file: id`` for error messages.

    Raises:
        DataFormatError: Non-numeric or disordered times, or a segment outside the recording.
    """
    start = parse_float(times[0], f"{where} start")
    end = parse_float(times[1], f"{where} end")
    ordered = end == -1 or (math.isfinite(end) and end > start)
    if not (math.isfinite(start) and start >= 0 and ordered):
        raise DataFormatError(
            f"{where}: bad times {times[0]} {times[1]} (need 0 <= start < end, or end = -1)"
        )
    first = math.floor(start * rate + 1e-6)  # the tolerance absorbs decimal rounding only
    stop = frames if end == -1 else math.floor(end * rate + 1e-6)
    if frames < stop <= frames + SEGMENT_OVERSHOOT * rate:
        stop = frames
    if first >= stop or stop > frames:
        raise DataFormatError(
            f"{where}: {times[0]}..{times[1]} s is outside the recording "
            f"({frames / rate:.3f} s long)"
        )
    return first, stop


def segment_paths(
    source: Path, entries: Mapping[str, str], recordings: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, float]]:
    """Sample-range paths of the segments, and their lengths in seconds.

    Args:
        source: The ``segments`` file (for error messages).
        entries: Its lines as ``<utt> -> "<recording> <start> <end>"``.
        recordings: ``wav.scp`` as recording id -> resolved path.

    Returns:
        ``(paths, lengths)``, both keyed by segment id in file order.

    Raises:
        DataFormatError: Bad lines, recordings absent from ``wav.scp`` or unreadable, or
            segments outside their recording.
    """
    paths: dict[str, str] = {}
    lengths: dict[str, float] = {}
    infos: dict[str, tuple[int, int]] = {}
    for identifier, value in entries.items():
        where = f"{source}: {identifier}"
        parts = value.split()
        if len(parts) != 3:
            raise DataFormatError(f"{where}: expected '<utt> <recording> <start> <end>'")
        recording = parts[0]
        if recording not in recordings:
            raise DataFormatError(f"{where}: recording {recording!r} is not in wav.scp")
        if recording not in infos:
            infos[recording] = _recording_info(recordings[recording], f"{where}: {recording}")
        frames, rate = infos[recording]
        first, stop = segment_samples((parts[1], parts[2]), frames, rate, where)
        paths[identifier] = kaldi_audio.with_range(recordings[recording], first, stop)
        lengths[identifier] = (stop - first) / rate
    return paths, lengths
