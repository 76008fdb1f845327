"""Exception hierarchy shared by the whole suite.

Every error a user can trigger with bad input derives from :class:`SqaError`, so the CLI can turn it
into one clear line on stderr and a non-zero exit code instead of a traceback.
"""

from __future__ import annotations


class SqaError(Exception):
    """Base class of all user-facing errors of the suite."""


class AudioError(SqaError, ValueError):
    """An audio file or array cannot be used (see the subclasses for why)."""


class UnreadableAudioError(AudioError):
    """The file is missing, corrupt, or not an audio file libsndfile can decode."""


class EmptyAudioError(AudioError):
    """The file decodes to zero samples."""


class SilentAudioError(AudioError):
    """The signal is all zeros or constant (no information to assess)."""


class NonFiniteAudioError(AudioError):
    """The signal contains NaN or infinite samples."""


class TooShortAudioError(AudioError):
    """The signal is shorter than the configured minimum duration."""


class TooLongAudioError(AudioError):
    """The signal is longer than a metric's documented maximum (valid audio, not that metric's)."""


class DataFormatError(SqaError, ValueError):
    """A data file (scp, jsonl, csv, split.json, ...) is malformed or inconsistent."""


class CheckpointError(SqaError, ValueError):
    """A checkpoint is unknown, corrupt, of an unknown format/kind, or fails its sha256 check."""


class MissingWeightsError(SqaError):
    """A metric or model needs local weights the user has not supplied."""


class MissingDependencyError(SqaError, ImportError):
    """An optional dependency (extra) is not installed."""


class NothingUsableError(SqaError):
    """A run finished but produced no usable value (every file failed); exit status 1."""

    exit_code = 1


class ConfigError(SqaError, ValueError):
    """A configuration (YAML file, checkpoint config, overrides) that does not fit its dataclass."""


class OutputError(SqaError, OSError):
    """An output cannot be written (disk full, read-only folder, folder removed while running).

    It is an :class:`OSError` too (``errno`` kept), so code that handles OS errors still sees it;
    the message always names the file: ``cannot write OUT/x.jsonl: No space left on device``.
    """

    def __init__(self, path: object, cause: OSError) -> None:
        reason = cause.strerror or str(cause) or type(cause).__name__
        super().__init__(f"cannot write {path}: {reason}")
        self.errno = cause.errno
        self.path = str(path)

    def __str__(self) -> str:
        return str(self.args[0])  # OSError's own form would print "[Errno 28] None"


class Terminated(KeyboardInterrupt):
    """SIGTERM received by the console command: stopped like Ctrl-C (exit status 143)."""


def describe_os_error(error: OSError) -> str:
    """One line for an OS error: ``FILE: reason`` (``FILE -> OTHER: reason`` for a rename)."""
    reason = error.strerror or str(error) or type(error).__name__
    if isinstance(error, SqaError) or error.filename is None:
        return str(error.args[0]) if len(error.args) == 1 else reason
    if error.filename2 is not None:
        return f"{error.filename} -> {error.filename2}: {reason}"
    return f"{error.filename}: {reason}"
