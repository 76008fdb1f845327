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
