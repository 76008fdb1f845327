"""Guarded import of torchaudio for teacher packages that need it at module level.

Why this exists: ``distillmos`` (and ``xls_r_sqa``) and ``asem`` import torchaudio when they are
imported, but only use its pure-Python parts (``transforms.Resample``, ``transforms.MFCC``,
``functional.lfilter``...). Every torchaudio wheel on PyPI is built against one exact torch release
(and CUDA), so with another torch (here the CPU build 2.13.0) ``import torchaudio`` fails while
loading its compiled extension ``_torchaudio*.so``. Our own code never uses torchaudio.

:func:`ensure_torchaudio` first tries the normal import and does nothing else when it works (a
machine with a matching torchaudio is unaffected). Only when it fails does it install a stand-in for
``torchaudio._extension`` that reports the compiled extension as unavailable, so the rest of the
package imports and torchaudio takes its pure-Python code paths. Functions that genuinely need the
extension (forced alignment, CTC decoders, I/O backends) then fail when called, which we never do.
"""

from __future__ import annotations

import sys
import types

from sqa.compat.optional import install_hint
from sqa.errors import MissingDependencyError

_MODE: str | None = None


def _drop_partial_import() -> None:
    """Forget modules left behind by a failed ``import torchaudio``."""
    for name in [
        name for name in sys.modules if name == "torchaudio" or name.startswith("torchaudio.")
    ]:
        del sys.modules[name]


def _extension_stand_in() -> types.ModuleType:
    """A ``torchaudio._extension`` module that says the compiled extension is absent."""
    module = types.ModuleType("torchaudio._extension")

    def unavailable(*_arguments: object, **_keywords: object) -> None:
        raise RuntimeError("this torchaudio feature needs its compiled extension, unavailable here")

    def fail_if_no_align(function: object) -> object:
        # Keeps the decorator usable at import time; the decorated function fails when called.
        return unavailable

    module._IS_TORCHAUDIO_EXT_AVAILABLE = False  # type: ignore[attr-defined]
    module._IS_ALIGN_AVAILABLE = False  # type: ignore[attr-defined]
    module.fail_if_no_align = fail_if_no_align  # type: ignore[attr-defined]
    module._check_cuda_version = unavailable  # type: ignore[attr-defined]
    module._load_lib = lambda _name: False  # type: ignore[attr-defined]
    module.__path__ = []  # type: ignore[attr-defined]  # a package, so submodule lookups fail cleanly
    return module


def ensure_torchaudio() -> str:
    """Make ``import torchaudio`` work, natively if possible.

    Returns:
        ``"native"`` if torchaudio imported normally, ``"fallback"`` if its pure-Python parts were
        imported behind the stand-in extension.

    Raises:
        MissingDependencyError: If torchaudio is not installed at all, or fails even without its
            extension.
    """
    global _MODE
    if _MODE is not None:
        return _MODE
    try:
        import torchaudio  # the import itself is the check

        _MODE = "native"
        return _MODE
    except ModuleNotFoundError as error:
        if error.name == "torchaudio":
            raise MissingDependencyError(
                f"torchaudio is not installed; {install_hint('metrics', 'torchaudio')}"
            ) from None
        first_error: Exception = error
    except (OSError, ImportError, RuntimeError) as error:
        first_error = error
    _drop_partial_import()
    sys.modules["torchaudio._extension"] = _extension_stand_in()
    try:
        import torchaudio  # noqa: F401
    except Exception as error:
        _drop_partial_import()
        raise MissingDependencyError(
            f"torchaudio cannot be imported ({first_error}); the fallback failed too ({error})"
        ) from error
    _MODE = "fallback"
    return _MODE
