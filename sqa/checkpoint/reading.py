"""Weights-only reading of any torch file a user names, with one line of ours on failure.

Every model, checkpoint, resume and weights option of the suite reads its file through
:func:`read_weights_only`. It never runs code from the file (``torch.load(weights_only=True)``),
and when torch refuses a file its message (several lines, ending with the advice to retry with
weights-only loading switched off) is replaced by one line that says what the file is and that
sqa does not load it: switching the protection off is never the answer for a file from elsewhere.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from sqa.errors import CheckpointError

# Longest piece of a foreign error message quoted in ours (file content can be arbitrary).
QUOTE_LIMIT = 200
_GLOBAL_PATTERNS = (
    re.compile(r"GLOBAL (\S+) was not an allowed global"),
    re.compile(r"unsupported GLOBAL (\S+) whose module"),
    re.compile(r"Unsupported global: GLOBAL (\S+)"),
)


def shorten(text: object, limit: int = QUOTE_LIMIT) -> str:
    """``str(text)`` on one line, cut to ``limit`` characters (with an ellipsis when cut)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _pickled_global(message: str) -> str | None:
    for pattern in _GLOBAL_PATTERNS:
        found = pattern.search(message)
        if found:
            return found.group(1).rstrip(".,;")
    return None


def _foreign_detail(error: BaseException) -> str:
    """The first line of torch's message, without its advice about weights-only loading."""
    for line in str(error).splitlines():
        line = line.strip()
        if line and "weights_only" not in line and not line.startswith("Weights only load"):
            return shorten(line)
    return type(error).__name__


def _is_pickle(source: Path) -> bool:
    """Whether the file starts like a torch zip or a pickle (protocol 2 or later)."""
    try:
        with open(source, "rb") as stream:
            head = stream.read(2)
    except OSError:
        return False
    return head == b"PK" or head[:1] == b"\x80"


def refusal(source: Path, error: BaseException) -> CheckpointError:
    """Our one-line error for a file that ``torch.load(weights_only=True)`` refused.

    Args:
        source: The file.
        error: What torch raised.
    """
    message = str(error)
    found = _pickled_global(message)
    if found is not None:
        return CheckpointError(
            f"refusing to load {source}: its pickle calls or builds {shorten(found, 80)}, Python "
            "code that sqa never runs (checkpoints hold tensors and plain types only)"
        )
    if _is_pickle(source) and (
        isinstance(error, pickle.UnpicklingError) or "WeightsUnpickler" in message
    ):
        return CheckpointError(
            f"refusing to load {source}: it is not a weights-only torch checkpoint (a plain "
            "pickle or objects other than tensors and plain types; sqa never runs pickled code)"
        )
    if "TorchScript" in message:
        return CheckpointError(f"{source} is a TorchScript archive, not a checkpoint")
    return CheckpointError(
        f"{source} is not a readable checkpoint (truncated, corrupt or not a torch file: "
        f"{_foreign_detail(error)})"
    )


def read_weights_only(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, failing with one line of ours.

    Raises:
        CheckpointError: A missing or unreadable file, or one holding more than tensors and
            plain types (its pickle is never run).
    """
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"checkpoint file not found: {source}")
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols of foreign files before refusing them; the
            # refusal below says all there is to say.
            warnings.simplefilter("ignore")
            return torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # a hostile file may make the unpickler fail in any way
        raise refusal(source, error) from None
