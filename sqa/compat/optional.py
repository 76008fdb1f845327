"""Imports of optional dependencies with one clear error naming the extra to install."""

from __future__ import annotations

from types import ModuleType

from sqa.errors import MissingDependencyError

# Import name -> pip distribution name, where they differ.
PIP_NAMES = {"xls_r_sqa": "xls-r-sqa", "sklearn": "scikit-learn"}


def pip_name(module: str) -> str:
    """The pip distribution that provides the top-level module of ``module`` (``"a.b"`` -> a)."""
    top = module.split(".")[0]
    return PIP_NAMES.get(top, top)


def install_hint(extra: str, package: str | None = None) -> str:
    """How to install a missing dependency: ``install it with: pip install "sqa-suite[X]"``.

    Args:
        extra: The ``sqa-suite`` extra that provides it (``"metrics"``, ``"ssl"``...).
        package: The pip package itself, named as the alternative when given.

    Returns:
        One clause (no trailing punctuation) for an error or warning message.
    """
    hint = f'install it with: pip install "sqa-suite[{extra}]"'
    return f"{hint} (or: pip install {package})" if package else hint


def import_transformers(purpose: str) -> ModuleType:
    """``import transformers``, or a :class:`MissingDependencyError` saying what needs it.

    Args:
        purpose: What needs it, e.g. ``"the SSL front end"`` (starts the error message).
    """
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError(
            f"{purpose} needs transformers; {install_hint('ssl', 'transformers')}"
        ) from None
    return transformers
