"""Model kind -> export wrapper builder, filled by each kind's module (like the model registry).

A builder takes an eval-mode model and returns a list of :class:`ExportGraph` (one or more
graphs), each a traceable module with input names, dynamic axes and an example-input factory.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from sqa.errors import SqaError


@dataclass
class ExportGraph:
    """One ONNX graph to write.

    Attributes:
        suffix: File suffix inserted before ``.onnx`` (``""`` main graph, ``".pair"``...).
        module: Traceable module computing the graph (same weights as the eager model).
        reference: Eager callable with the same inputs, the PyTorch side of verification.
        input_names: Graph input names.
        output_names: Graph output names.
        dynamic_axes: ``torch.onnx.export`` dynamic axes.
        inputs: Callable ``(samples) -> tuple of tensors`` giving verification inputs.
    """

    suffix: str
    module: nn.Module
    reference: Callable
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    inputs: Callable
    metadata: dict[str, str] = field(default_factory=dict)


ExportBuilder = Callable[[nn.Module], list[ExportGraph]]
# kind -> builder, or "module:function" imported on first use (model modules stay light).
_BUILDERS: dict[str, ExportBuilder | str] = {}


def register_exporter(kind: str, builder: ExportBuilder | str) -> None:
    """Register the export builder of a model kind (called by the kind's module).

    Args:
        kind: Model kind, as stored in checkpoints.
        builder: The builder, or its ``"module:function"`` path, imported when first needed.
    """
    _BUILDERS[kind] = builder


def exporter_for(kind: str) -> ExportBuilder:
    """The builder of ``kind``.

    Raises:
        SqaError: If no exporter is registered for the kind.
    """
    if kind not in _BUILDERS:
        known = ", ".join(sorted(_BUILDERS)) or "none"
        raise SqaError(f"no ONNX exporter for model kind {kind!r} (exportable: {known})")
    builder = _BUILDERS[kind]
    if isinstance(builder, str):
        module_name, _, function = builder.partition(":")
        builder = getattr(importlib.import_module(module_name), function)
        _BUILDERS[kind] = builder
    return builder
