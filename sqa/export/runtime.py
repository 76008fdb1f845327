"""Run exported graphs in onnxruntime behind the interfaces the commands already use.

:func:`open_graph` reads a file written by :func:`sqa.export.onnx.export_onnx`, checks its
metadata (format, kind) and returns an :class:`OnnxGraph`. :class:`OnnxPredictor` stands in for
:class:`~sqa.predictors.model.UniVersa` in ``sqa predict --backend onnx``; rankers and restorers
have theirs in their own packages.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sqa.errors import CheckpointError, MissingDependencyError

BACKENDS = ("torch", "onnx")
THREADS_VARIABLE = "SQA_ONNX_THREADS"


def choose_backend(backend: str | None, model: str | None) -> str:
    """``--backend`` as given, else ``onnx`` for a ``.onnx`` model path and ``torch`` otherwise."""
    if backend:
        return backend
    return "onnx" if model and str(model).endswith(".onnx") else "torch"


class OnnxGraph:
    """One ONNX graph with its metadata.

    Args:
        path: The ``.onnx`` file.
        session: Its onnxruntime session.
        metadata: Its ``metadata_props``.
    """

    def __init__(self, path: Path, session: Any, metadata: dict[str, str]) -> None:
        self.path = path
        self.session = session
        self.metadata = metadata
        self.kind = metadata.get("kind", "")
        self.config: dict[str, Any] = json.loads(metadata.get("config", "{}"))
        self.sample_rate = int(metadata.get("sample_rate", "16000"))
        self.input_names = [item.name for item in session.get_inputs()]
        stored = json.loads(metadata.get("checkpoint_metadata", "{}"))
        self.checkpoint_metadata: dict[str, Any] = stored | {"file": str(path), "kind": self.kind}

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run the graph on inputs in the graph's input order."""
        return self.session.run(None, dict(zip(self.input_names, inputs, strict=True)))


def open_graph(
    path: str | os.PathLike[str], kinds: Sequence[str] | None = None, purpose: str = "this command"
) -> OnnxGraph:
    """Open an exported graph for inference on the CPU.

    Args:
        path: File written by ``sqa export onnx``.
        kinds: Model kinds the caller can run (``None``: any).
        purpose: What needs it, for the error message.

    Raises:
        CheckpointError: Missing file, not an ``sqa export onnx`` graph, or the wrong kind.
        MissingDependencyError: Without onnxruntime.
    """
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(
            "--backend onnx needs onnxruntime: pip install 'sqa-suite[onnx]'"
        ) from None
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX model {path} not found")
    options = onnxruntime.SessionOptions()
    threads = os.environ.get(THREADS_VARIABLE) or os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():
        options.intra_op_num_threads = int(threads)
    try:
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own untyped errors for bad files
        raise CheckpointError(f"{path} is not a readable ONNX model: {error}") from None
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    if metadata.get("format") != "sqa-onnx-1":
        raise CheckpointError(f"{path} was not written by `sqa export onnx` (no sqa metadata)")
    graph = OnnxGraph(path, session, metadata)
    if kinds is not None and graph.kind not in kinds:
        raise CheckpointError(
            f"{path} holds a {graph.kind!r} model; {purpose} needs one of {', '.join(kinds)}"
        )
    return graph


class OnnxPredictor:
    """``UniVersa``-compatible predictor on an exported graph (inference only).

    Calling it returns an object with ``scores`` (metric -> ``(B,)`` tensor) like the eager model.
    """

    def __init__(self, graph: OnnxGraph) -> None:
        self.graph = graph
        self.metric_names = graph.metadata["metrics"].split(",")
        self.sample_rate = graph.sample_rate
        self.minimum_samples = int(graph.metadata.get("minimum_samples", "1"))
        directions = graph.config.get("metric_directions") or []
        self.directions = {str(name): bool(higher) for name, higher in directions}
        self.config = graph.config
        self.checkpoint_metadata = graph.checkpoint_metadata

    def higher_is_better(self, name: str) -> bool:
        """Direction of a predicted metric."""
        return self.directions[name]

    def eval(self) -> OnnxPredictor:
        """No-op (mirrors ``nn.Module.eval``)."""
        return self

    def to(self, _device: object) -> OnnxPredictor:
        """No-op: onnxruntime runs on the CPU here."""
        return self

    def __call__(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> Any:
        """``(B, T)`` waveform and ``(B,)`` lengths -> output with ``scores``."""
        from sqa.predictors.model import PredictorOutput

        samples = waveform.detach().cpu().float().numpy()
        if lengths is None:
            lengths = torch.full((samples.shape[0],), samples.shape[1])
        if samples.shape[1] < self.minimum_samples:  # the eager front end pads the same way
            samples = np.pad(samples, ((0, 0), (0, self.minimum_samples - samples.shape[1])))
        valid = lengths.detach().cpu().long().numpy()
        (scores,) = self.graph.run(np.ascontiguousarray(samples), valid)
        table = torch.from_numpy(scores)
        return PredictorOutput(
            scores={name: table[:, index] for index, name in enumerate(self.metric_names)},
            hidden=torch.empty(table.shape[0], 0),
        )
