"""Teacher metrics: a registry of specifications plus plain-function implementations.

Importing :mod:`sqa.metrics` is cheap: the registry is plain data and the implementations (pesq,
pystoi, onnxruntime, torch models) are imported only when a metric is computed.
"""

from sqa.metrics.registry import (
    METRIC_GROUPS,
    METRIC_SPECS,
    OFFLINE_METRICS,
    TRACK2_KEYS,
    MetricSpec,
    expand_metric_names,
    get_metric_spec,
)

__all__ = [
    "METRIC_GROUPS",
    "METRIC_SPECS",
    "OFFLINE_METRICS",
    "TRACK2_KEYS",
    "MetricSpec",
    "expand_metric_names",
    "get_metric_spec",
]
