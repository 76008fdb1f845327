"""sqa-suite: learned speech-quality assessment and ranking.

The foundation package: audio I/O, data formats, statistics, metrics, the multi-metric predictor,
the checkpoint format and the ``sqa`` CLI. ``rankers`` and ``se_finetune`` build on it.
"""

from __future__ import annotations

from importlib import metadata as _metadata
from typing import Any

try:  # the version's one place is pyproject.toml
    __version__ = _metadata.version("sqa-suite")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
__all__ = ["__version__", "load_model"]


def __getattr__(name: str) -> Any:
    # Lazy so that `import sqa` (and `sqa --help`) does not import torch.
    if name == "load_model":
        from sqa.checkpoint import load_model

        return load_model
    raise AttributeError(f"module 'sqa' has no attribute {name!r}")
