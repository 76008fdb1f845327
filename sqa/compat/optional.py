"""Imports of optional dependencies with one clear error naming the extra to install."""

from __future__ import annotations

from types import ModuleType

from sqa.errors import MissingDependencyError


def import_transformers(purpose: str) -> ModuleType:
    """``import transformers``, or a :class:`MissingDependencyError` saying what needs it.

    Args:
        purpose: What needs it, e.g. ``"the SSL front end"`` (starts the error message).
    """
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError(
            f"{purpose} needs transformers; install the 'ssl' extra"
        ) from None
    return transformers
