"""Audio input/output, validation and resampling.

Reading goes through soundfile (libsndfile), which decodes WAV, FLAC, OGG/Vorbis, Opus and MP3;
torchaudio is never used. Every loader returns a float32 mono array ``(T,)`` and its rate.

Policies, decided here and nowhere else:

* **Integer formats** (PCM_16, PCM_24, PCM_32, ...) are scaled to float32 in ``[-1, 1)`` by
  libsndfile (full scale = 1.0). Float files are returned as stored (not clipped).
* **Channels**: multi-channel files are reduced to mono with ``channels="mean"`` (the default: the
  average of all channels, so a one-sided channel is not lost) or ``channels="first"`` (channel 0,
  for files whose extra channels are not speech, e.g. a reference track).
* **Sample rate**: a loader resamples (soxr, high quality) only when the caller asks for a rate
  with ``sample_rate=...``; that is the model's or metric's own rate. Nothing else in the suite
  resamples implicitly: code that receives an array also receives its rate and passes it on.
  Inside differentiable graphs (e.g. SE fine-tuning) :func:`sqa.torch_audio.resample_torch` plays
  the same role (a module of its own, so that reading audio never imports torch).
* **Validation** (on by default) rejects, with a typed :class:`sqa.errors.AudioError` naming the
  file: unreadable/corrupt/non-audio files, zero samples, NaN/Inf samples, signals shorter than
  ``min_duration`` (default :data:`DEFAULT_MIN_DURATION` = 0.1 s) and all-zero/constant signals.
  Long files are allowed; callers chunk them.
"""

from __future__ import annotations

import errno
import io
import os
import warnings
from pathlib import Path

import numpy as np
import soundfile
import soxr

from sqa import kaldi_audio
from sqa.errors import (
    EmptyAudioError,
    NonFiniteAudioError,
    SilentAudioError,
    SqaError,
    TooShortAudioError,
    UnreadableAudioError,
)
from sqa.fileio import atomic_open

DEFAULT_MIN_DURATION = 0.1
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus")
CHANNEL_POLICIES = ("mean", "first")
# A peak-to-peak range below this counts as constant. It is just under one LSB of 24-bit PCM
# (2**-23), so any signal a real converter could have produced passes.
SILENCE_TOLERANCE = 1e-7

_FORMAT_BY_SUFFIX = {
    ".wav": ("WAV", None),
    ".flac": ("FLAC", None),
    ".ogg": ("OGG", "VORBIS"),
    ".opus": ("OGG", "OPUS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}

PathLike = str | os.PathLike[str]


def is_audio_file(path: PathLike) -> bool:
    """Whether ``path`` has one of :data:`AUDIO_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    """Decode a file to float32 ``(T, C)``, turning every libsndfile failure into a typed error."""
    if path == Path():  # a label-only listing row (Track-2 references need no audio_path)
        raise UnreadableAudioError("the listing gives no audio path for this file")
    spec = kaldi_audio.parse_audio_spec(str(path))  # foo.ark:12, rec.wav[a:b]; refuses pipes
    if spec is not None:
        return kaldi_audio.read_audio_spec(spec, str(path))
    _check_readable_audio(path)
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError) as error:
        raise _undecodable(path, error) from None
    return data, int(rate)


def _check_readable_audio(path: Path) -> None:
    """:func:`_check_readable`, then refuse an empty file (libsndfile calls it "not recognised")."""
    _check_readable(path)
    if path.stat().st_size == 0:
        raise EmptyAudioError(f"{path}: file is empty (0 bytes)")


def _undecodable(path: Path, error: Exception) -> UnreadableAudioError:
    """The one reason for a file that libsndfile cannot open, whether its header or its data."""
    reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    return UnreadableAudioError(
        f"{path}: cannot decode audio (corrupt or not an audio file): {reason}"
    )


def link_problem(path: Path) -> str | None:
    """Why a symbolic link leads to no file (``None`` when ``path`` is not such a link)."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop: the link leads back to itself"
        return f"broken symbolic link: its target {os.readlink(path)} does not exist"
    return None


def _check_readable(path: Path) -> None:
    """Say why a file cannot be opened, in words (libsndfile only says "System error")."""
    problem = link_problem(path)
    if problem is not None:
        raise UnreadableAudioError(f"{path}: {problem}")
    if not path.exists():
        raise UnreadableAudioError(f"{path}: audio file does not exist")
    if not path.is_file():
        raise UnreadableAudioError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as stream:
            stream.read(1)
    except PermissionError:
        raise UnreadableAudioError(f"{path}: permission denied (the file cannot be read)") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UnreadableAudioError(f"{path}: cannot read the file: {reason}") from None


def _to_mono(data: np.ndarray, channels: str) -> np.ndarray:
    """Reduce ``(T, C)`` to ``(T,)`` following the channel policy."""
    if data.shape[1] == 1:
        return np.ascontiguousarray(data[:, 0])
    if channels == "first":
        return np.ascontiguousarray(data[:, 0])
    return data.mean(axis=1, dtype=np.float64).astype(np.float32)


def load_audio(
    path: PathLike,
    *,
    sample_rate: int | None = None,
    channels: str = "mean",
    min_duration: float = DEFAULT_MIN_DURATION,
    validate: bool = True,
) -> tuple[np.ndarray, int]:
    """Load an audio file as float32 mono, optionally resampled.

    Args:
        path: WAV/FLAC/OGG/Opus/MP3 (anything libsndfile decodes), or a Kaldi archive entry
            or sample range (:mod:`sqa.kaldi_audio`).
        sample_rate: Target rate; when given and different from the file's, the signal is
            resampled with soxr (HQ). ``None`` keeps the file's rate.
        channels: ``"mean"`` (average of channels, default) or ``"first"`` (channel 0).
        min_duration: Minimum duration in seconds enforced by validation.
        validate: Run :func:`validate_audio` on the decoded signal (before resampling).

    Returns:
        ``(samples, rate)``: float32 array ``(T,)`` and its sample rate (``== sample_rate``
        when given).

    Raises:
        UnreadableAudioError: Missing, corrupt or non-audio file (always raised).
        EmptyAudioError, NonFiniteAudioError, TooShortAudioError, SilentAudioError: When
            ``validate`` is true (a 0-byte file is always an EmptyAudioError).
    """
    if channels not in CHANNEL_POLICIES:
        raise SqaError(f"unknown channel policy {channels!r}; use one of {CHANNEL_POLICIES}")
    source = Path(path)
    data, rate = _read_file(source)
    samples = _to_mono(data, channels)
    if validate:
        validate_audio(samples, rate, min_duration=min_duration, source=str(source))
    if sample_rate is not None and sample_rate != rate:
        samples = resample(samples, rate, sample_rate)
        rate = int(sample_rate)
    return samples, rate


def validate_audio(
    samples: np.ndarray,
    sample_rate: int,
    *,
    min_duration: float = DEFAULT_MIN_DURATION,
    source: str = "<array>",
) -> None:
    """Check that a signal is usable for quality assessment.

    Checks run in this order: empty, non-finite, too short, silent/constant.

    Args:
        samples: Signal ``(T,)`` or ``(C, T)`` (time on the last axis).
        sample_rate: Its sample rate in Hz.
        min_duration: Minimum duration in seconds (``0`` disables the check).
        source: Name used in error messages (usually the file path).

    Raises:
        EmptyAudioError: Zero samples.
        NonFiniteAudioError: Any NaN or infinite sample.
        TooShortAudioError: Shorter than ``min_duration``.
        SilentAudioError: All samples equal (all-zero or constant/DC).
    """
    array = np.asarray(samples)
    frames = array.shape[-1] if array.ndim else 0
    if array.size == 0 or frames == 0:
        raise EmptyAudioError(f"{source}: audio has zero samples")
    finite = np.isfinite(array)
    if not finite.all():
        count = int(array.size - finite.sum())
        raise NonFiniteAudioError(f"{source}: audio contains {count} NaN/Inf sample(s)")
    duration = frames / float(sample_rate)
    if duration < min_duration:
        raise TooShortAudioError(
            f"{source}: audio is {duration:.3f} s long, shorter than the minimum {min_duration} s"
        )
    if float(np.max(array)) - float(np.min(array)) < SILENCE_TOLERANCE:
        raise SilentAudioError(f"{source}: audio is silent (all samples equal {array.flat[0]:g})")


def resample(samples: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample with soxr (high quality, linear phase).

    Args:
        samples: Signal ``(T,)`` or channels-first ``(C, T)``.
        orig_rate: Its sample rate in Hz.
        target_rate: Wanted sample rate in Hz.

    Returns:
        The resampled signal ``(T',)`` or ``(C, T')`` with ``T' ≈ T * target / orig``, float32
        (float64 input stays float64).
    """
    array = np.asarray(samples)
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float32)
    if orig_rate == target_rate:
        return array.copy()
    if array.ndim not in (1, 2):
        raise SqaError(f"resample expects (T,) or (C, T) audio, got shape {array.shape}")
    if array.shape[-1] == 0:
        return np.zeros((*array.shape[:-1], 0), dtype=array.dtype)
    if array.ndim == 1:
        return soxr.resample(array, orig_rate, target_rate, quality="HQ")
    # soxr wants time first: (T, C).
    output = soxr.resample(np.ascontiguousarray(array.T), orig_rate, target_rate, quality="HQ")
    return np.ascontiguousarray(output.T)


def _prepare_for_writing(samples: np.ndarray, source: str) -> np.ndarray:
    """Return ``(T,)`` or ``(T, C)`` float32 within ``[-1, 1]`` for soundfile."""
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim not in (1, 2):
        raise SqaError(f"{source}: save_audio expects (T,) or (C, T) audio, got {array.shape}")
    if not np.isfinite(array).all():
        raise NonFiniteAudioError(f"{source}: refusing to write NaN/Inf samples")
    peak = float(np.max(np.abs(array))) if array.size else 0.0
    if peak > 1.0:
        warnings.warn(
            f"{source}: peak {peak:.3f} exceeds full scale; clipping to [-1, 1]", stacklevel=3
        )
        array = np.clip(array, -1.0, 1.0)
    return array if array.ndim == 1 else np.ascontiguousarray(array.T)


def _resolve_format(destination: Path, subtype: str) -> tuple[str, str]:
    """Container and subtype from the suffix; lossy containers replace the PCM default."""
    suffix = destination.suffix.lower()
    if suffix not in _FORMAT_BY_SUFFIX:
        raise SqaError(f"{destination}: cannot write audio with suffix {suffix!r}")
    container, lossy_subtype = _FORMAT_BY_SUFFIX[suffix]
    if lossy_subtype is not None and subtype == "PCM_16":
        subtype = lossy_subtype
    if not soundfile.check_format(container, subtype):
        raise SqaError(f"{destination}: subtype {subtype!r} cannot be written as {container}")
    return container, subtype


def save_audio(
    path: PathLike, samples: np.ndarray, sample_rate: int, *, subtype: str = "PCM_16"
) -> Path:
    """Write audio atomically (temporary file in the same folder, then rename).

    An existing file is replaced; callers that must not overwrite use
    :func:`sqa.fileio.check_writable` first. Samples outside ``[-1, 1]`` are clipped with a
    warning; NaN/Inf samples are refused.

    Args:
        path: Destination; the suffix picks the container (see :data:`AUDIO_EXTENSIONS`).
        samples: Float signal ``(T,)`` or channels-first ``(C, T)`` in ``[-1, 1]``.
        sample_rate: Sample rate in Hz.
        subtype: libsndfile subtype (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``, ...); for .ogg,
            .opus and .mp3 the default is replaced by the container's codec.

    Returns:
        The destination path.

    Raises:
        NonFiniteAudioError: NaN/Inf samples.
        SqaError: Unknown suffix, unsupported subtype or a rate the codec refuses.
    """
    destination = Path(path)
    data = _prepare_for_writing(samples, str(destination))
    container, subtype = _resolve_format(destination, subtype)
    # Encode in memory first: an OS error (a full disk) raised inside libsndfile's write callback
    # would only be printed as a traceback and ignored; written here it is a clean OutputError.
    encoded = io.BytesIO()
    try:
        soundfile.write(encoded, data, int(sample_rate), subtype=subtype, format=container)
    except (soundfile.SoundFileError, RuntimeError) as error:
        raise SqaError(f"{destination}: cannot write audio: {error}") from None
    with atomic_open(destination, "wb") as stream:
        stream.write(encoded.getbuffer())
    return destination


def audio_duration(path: PathLike) -> float:
    """Duration in seconds read from the file header (no decoding).

    Raises:
        UnreadableAudioError: Missing, corrupt or non-audio file.
    """
    source = Path(path)
    spec = kaldi_audio.parse_audio_spec(str(source))
    if spec is not None:
        frames, rate = kaldi_audio.audio_spec_info(spec, str(source))
        return frames / float(rate)
    _check_readable_audio(source)
    try:
        info = soundfile.info(str(source))
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError) as error:
        raise _undecodable(source, error) from None
    return info.frames / float(info.samplerate)
