"""A worker function that kills its own process on one item (for the process-pool tests)."""

from __future__ import annotations

import os
import signal

CRASHING_ITEM = 3


def crash_on_one(item: int) -> int:
    """``10 * item``, except that :data:`CRASHING_ITEM` dies of a segmentation fault."""
    if item == CRASHING_ITEM:
        os.kill(os.getpid(), signal.SIGSEGV)
    return item * 10


def no_setup() -> None:
    """A worker initialiser that does nothing."""
