"""Uni-VERSA-Ext-style multi-metric predictor (issue 5): front ends, trunks, training, inference.

The model names below are imported on first use (PEP 562), so that importing a light sub-module
(``sqa.predictors.loading`` for ``--help``) does not import torch; the ``"universa"`` model kind
reaches :mod:`sqa.checkpoint` through the ``sqa.models`` entry point, or by importing
:mod:`sqa.predictors.model`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_METRIC_GROUPS",
    "MODEL_KIND",
    "PredictorOutput",
    "RangeActivation",
    "TrunkConfig",
    "UniVersa",
    "UniVersaConfig",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sqa.predictors import model

        return getattr(model, name)
    raise AttributeError(f"module 'sqa.predictors' has no attribute {name!r}")
