"""Uni-VERSA-Ext-style multi-metric predictor (issue 5): front ends, trunks, training, inference.

Importing this package registers the ``"universa"`` model kind with :mod:`sqa.checkpoint`.
"""

from sqa.predictors.model import (
    DEFAULT_METRIC_GROUPS,
    MODEL_KIND,
    PredictorOutput,
    RangeActivation,
    TrunkConfig,
    UniVersa,
    UniVersaConfig,
)

__all__ = [
    "DEFAULT_METRIC_GROUPS",
    "MODEL_KIND",
    "PredictorOutput",
    "RangeActivation",
    "TrunkConfig",
    "UniVersa",
    "UniVersaConfig",
]
