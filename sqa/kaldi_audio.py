"""Kaldi extended audio paths: archive entries and sample ranges, read without running commands.

Kaldi listings (``wav.scp``) can name audio by more than a file path. Two forms are read, in the
notation of kaldiio (so the same listing also works in ESPnet and VERSA's ``--io kaldi``):

* ``foo.ark:1234``: the audio object at byte offset 1234 of a Kaldi archive (as written by
  Kaldi's ``wav-copy`` or kaldiio), read with the optional package ``kaldiio``;
* ``rec.wav[16000:47999]``: samples 16000 to 47999 (both included) of a file or archive entry.
  :func:`sqa.data.read_kaldi_dir` turns each line of a ``segments`` file into this form.

A command pipe (``sox in.wav -t wav - |``) is never run; reading one is an error that says so.
A path that exists as a file is always that file, whatever characters its name contains.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass

import numpy as np
import soundfile

from sqa.errors import UnreadableAudioError

_RANGE = re.compile(r"^(?P<base>.+)\[(?P<first>\d+):(?P<last>\d+)\]$")
_ARCHIVE = re.compile(r"^(?P<file>.+):(?P<offset>\d+)$")
KALDIIO_HINT = "reading Kaldi archives needs the optional package kaldiio (pip install kaldiio)"


@dataclass(frozen=True)
class AudioSpec:
    """Where an extended path's samples are.

    Attributes:
        file: The file on disk (an audio file or a Kaldi archive).
        offset: Byte offset of the entry in an archive; ``None`` for an audio file.
        start: First sample of a range; ``None`` for the whole signal.
        stop: One past the last sample of a range; ``None`` for the whole signal.
    """

    file: str
    offset: int | None = None
    start: int | None = None
    stop: int | None = None


def is_pipe(text: str) -> bool:
    """Whether ``text`` is a Kaldi command pipe (``cmd |`` or ``| cmd``)."""
    stripped = text.strip()
    return stripped.endswith("|") or stripped.startswith("|")


def kaldiio_available() -> bool:
    """Whether the optional package kaldiio can be imported."""
    return importlib.util.find_spec("kaldiio") is not None


def split_suffix(text: str) -> tuple[str, str]:
    """Split a path into its file part and its Kaldi suffix (``:offset`` and/or ``[a:b]``).

    Purely syntactic (no file system access), so a relative file part can be resolved against a
    listing's folder and the suffix put back. ``("a.wav", "")`` when there is no suffix.
    """
    base, suffix = text, ""
    ranged = _RANGE.match(base)
    if ranged:
        base, suffix = ranged["base"], text[len(ranged["base"]) :]
    archived = _ARCHIVE.match(base)
    if archived:
        suffix = base[len(archived["file"]) :] + suffix
        base = archived["file"]
    return base, suffix


def parse_audio_spec(text: str) -> AudioSpec | None:
    """The spec of an extended path, or ``None`` for a plain file path.

    Raises:
        UnreadableAudioError: ``text`` is a command pipe.
    """
    if is_pipe(text):
        raise UnreadableAudioError(
            f"{text}: a Kaldi command pipe is not run; write its output to an audio file and "
            "list that file instead"
        )
    if os.path.exists(text):
        return None
    base, suffix = split_suffix(text)
    if not suffix:
        return None
    start = stop = None
    ranged = _RANGE.match(text)
    if ranged:
        start, stop = int(ranged["first"]), int(ranged["last"]) + 1
    archived = _ARCHIVE.match(text[: len(ranged["base"])] if ranged else text)
    offset = int(archived["offset"]) if archived else None
    return AudioSpec(base, offset, start, stop)


def with_range(path: str, start: int, stop: int) -> str:
    """``path`` restricted to samples ``start`` (included) to ``stop`` (excluded).

    A path that already has a range is narrowed (``start``/``stop`` count from its first sample).
    """
    ranged = _RANGE.match(path)
    if ranged and not os.path.exists(path):
        offset = int(ranged["first"])
        return f"{ranged['base']}[{offset + start}:{offset + stop - 1}]"
    return f"{path}[{start}:{stop - 1}]"


def _to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM to float32 full scale 1.0; ``(T,)`` becomes ``(T, 1)``."""
    array = np.asarray(samples)
    if np.issubdtype(array.dtype, np.signedinteger):
        array = array.astype(np.float64) / float(-np.iinfo(array.dtype).min)
    elif np.issubdtype(array.dtype, np.unsignedinteger):
        middle = (float(np.iinfo(array.dtype).max) + 1.0) / 2.0
        array = (array.astype(np.float64) - middle) / middle
    array = array.astype(np.float32)
    return array[:, None] if array.ndim == 1 else array


def _check_range(spec: AudioSpec, frames: int, text: str) -> tuple[int, int]:
    start = 0 if spec.start is None else spec.start
    stop = frames if spec.stop is None else spec.stop
    if stop > frames or start >= stop:
        raise UnreadableAudioError(
            f"{text}: samples {start}..{stop - 1} are outside the {frames} samples of {spec.file}"
        )
    return start, stop


def _load_archive(spec: AudioSpec, text: str) -> tuple[np.ndarray, int]:
    """The whole archive entry as float32 ``(T, C)`` and its rate."""
    if not kaldiio_available():
        raise UnreadableAudioError(f"{text}: a Kaldi archive entry; {KALDIIO_HINT}")
    import kaldiio

    try:
        loaded = kaldiio.load_mat(f"{spec.file}:{spec.offset}")
    except Exception as error:  # kaldiio raises many types for a bad offset or entry
        raise UnreadableAudioError(f"{text}: cannot read the archive entry: {error}") from None
    if not isinstance(loaded, tuple) or len(loaded) != 2:
        raise UnreadableAudioError(f"{text}: the archive entry is a feature matrix, not audio")
    rate, samples = loaded
    return _to_float(samples), int(rate)


def read_audio_spec(spec: AudioSpec, text: str) -> tuple[np.ndarray, int]:
    """Decode an extended path to float32 ``(T, C)`` and its rate.

    Raises:
        UnreadableAudioError: A missing file, a bad archive entry, a range outside the signal,
            or an archive without kaldiio installed.
    """
    if not os.path.isfile(spec.file):
        raise UnreadableAudioError(f"{text}: audio file {spec.file} does not exist")
    if spec.offset is not None:
        data, rate = _load_archive(spec, text)
        start, stop = _check_range(spec, data.shape[0], text)
        return np.ascontiguousarray(data[start:stop]), rate
    try:
        info = soundfile.info(spec.file)
        start, stop = _check_range(spec, info.frames, text)
        data, rate = soundfile.read(
            spec.file, start=start, stop=stop, dtype="float32", always_2d=True
        )
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError) as error:
        raise UnreadableAudioError(f"{text}: cannot decode audio: {error}") from None
    return data, int(rate)


def audio_spec_info(spec: AudioSpec, text: str) -> tuple[int, int]:
    """``(frames, rate)`` of an extended path (an archive entry is decoded to count them).

    Raises:
        UnreadableAudioError: As :func:`read_audio_spec`.
    """
    if spec.offset is not None or not os.path.isfile(spec.file):
        data, rate = read_audio_spec(spec, text)
        return data.shape[0], rate
    try:
        info = soundfile.info(spec.file)
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError) as error:
        raise UnreadableAudioError(f"{text}: cannot read audio header: {error}") from None
    start, stop = _check_range(spec, info.frames, text)
    return stop - start, int(info.samplerate)


def audio_info(text: str) -> tuple[int, int]:
    """``(frames, rate)`` of a plain or extended path.

    Raises:
        UnreadableAudioError: Missing, unreadable or non-audio input.
    """
    spec = parse_audio_spec(text) or AudioSpec(text)
    return audio_spec_info(spec, text)
