"""sqa-suite: learned speech-quality assessment and ranking.

The foundation package: audio I/O, data formats, statistics, metrics, the multi-metric predictor,
the checkpoint format and the ``sqa`` CLI. ``rankers`` and ``se_finetune`` build on it.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_model"]


def __getattr__(name: str) -> Any:
    # Lazy so that `import sqa` (and `sqa --help`) does not import torch.
    if name == "load_model":
        from sqa.checkpoint import load_model

        return load_model
    raise AttributeError(f"module 'sqa' has no attribute {name!r}")
