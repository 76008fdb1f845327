"""Write a model's ONNX graphs, verified against PyTorch before anything is kept.

Each graph of the model's :func:`~sqa.export.registry.exporter_for` builder is traced with
``torch.onnx.export`` (TorchScript exporter, opset 17, dynamic batch and length), run in
onnxruntime on inputs of several lengths next to the eager model, and written atomically only when
every output agrees within the tolerance. The checkpoint's kind, config and provenance go into the
graph's ``metadata_props`` so that ``--backend onnx`` needs nothing but the file.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sqa.errors import MissingDependencyError, SqaError
from sqa.export.registry import ExportGraph, exporter_for
from sqa.export.transformer import traceable_transformers
from sqa.fileio import atomic_open, check_writable

OPSET = 17
TOLERANCE = 1e-4
# Several lengths (one that is not a multiple of any hop, two beyond a 7.68 s window) at 16 kHz.
VERIFY_SAMPLES = (16000, 40001, 130000)
FORMAT = "sqa-onnx-1"


@dataclass
class GraphReport:
    """Verification of one written graph: where it went and the largest differences seen.

    ``max_difference`` (random audio) is held to :data:`TOLERANCE`; ``speech_difference``
    (speech-like audio, waveform graphs only, else NaN) is measured and reported, not held: on
    the Distill-MOS models it is as large as the eager model's own float32 rounding (README).
    """

    path: Path
    max_difference: float
    lengths: tuple[int, ...]
    speech_difference: float = float("nan")


def _onnx_modules() -> tuple[object, object]:
    try:
        import onnx
        import onnxruntime
    except ImportError as error:
        raise MissingDependencyError(
            f"ONNX export needs onnx and onnxruntime: {error}; pip install 'sqa-suite[onnx]'"
        ) from None
    return onnx, onnxruntime


def graph_path(output: Path, suffix: str) -> Path:
    """``model.onnx`` + ``".pair"`` -> ``model.pair.onnx``."""
    return output.with_name(output.name[: -len(".onnx")] + suffix + ".onnx")


def trace(graph: ExportGraph, samples: int) -> bytes:
    """The serialized ONNX model of one graph, traced on inputs of ``samples`` samples."""
    buffer = io.BytesIO()
    # torch.onnx.export puts the module back into the mode it found it in: a wrapper built in
    # training mode would switch the shared eager model to training (dropout) afterwards.
    graph.module.eval()
    with warnings.catch_warnings(), traceable_transformers(graph.module), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about constants it handles
        torch.onnx.export(
            graph.module,
            graph.inputs(samples),
            buffer,
            input_names=graph.input_names,
            output_names=graph.output_names,
            dynamic_axes=graph.dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def speech_inputs(graph: ExportGraph, samples: int) -> tuple[torch.Tensor, ...]:
    """The graph's inputs with speech-like audio in place of the random waveform."""
    from sqa.synthetic import speech_like

    inputs = graph.inputs(samples)
    waveform = inputs[0]
    rows = [speech_like(waveform.shape[1] / 16000, 16000, seed=row) for row in range(len(waveform))]
    speech = torch.from_numpy(np.stack([row[: waveform.shape[1]] for row in rows])).float()
    return (speech, *inputs[1:])


def verify(
    serialized: bytes, graph: ExportGraph, lengths: Sequence[int], *, speech: bool = False
) -> float:
    """Largest absolute difference between onnxruntime and the eager reference.

    Args:
        serialized: The ONNX model.
        graph: What it was traced from.
        lengths: Input lengths in samples.
        speech: Speech-like waveforms instead of random ones (no tolerance is applied).

    Raises:
        SqaError: If a difference exceeds :data:`TOLERANCE` (random inputs) or an output is
            not finite.
    """
    _, onnxruntime = _onnx_modules()
    session = onnxruntime.InferenceSession(serialized, providers=["CPUExecutionProvider"])
    worst = 0.0
    for samples in lengths:
        torch.manual_seed(samples)
        inputs = speech_inputs(graph, samples) if speech else graph.inputs(samples)
        with torch.no_grad():
            expected = graph.reference(*inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        feed = {name: value.numpy() for name, value in zip(graph.input_names, inputs, strict=True)}
        produced = session.run(graph.output_names, feed)
        for ours, theirs in zip(produced, expected, strict=True):
            if not np.isfinite(ours).all():
                raise SqaError(f"the ONNX graph gave non-finite outputs on {samples} samples")
            worst = max(worst, float(np.abs(ours - theirs.numpy()).max()))
    if worst > TOLERANCE and not speech:
        raise SqaError(f"ONNX and PyTorch outputs differ by {worst:.3g} (> {TOLERANCE})")
    return worst


def with_metadata(serialized: bytes, metadata: dict[str, str]) -> bytes:
    """The model with ``metadata`` added to its ``metadata_props``."""
    onnx, _ = _onnx_modules()
    proto = onnx.load_from_string(serialized)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def model_metadata(model: nn.Module, kind: str) -> dict[str, str]:
    """What every graph records: format, kind, config, source checkpoint and sample rate."""
    from dataclasses import asdict, is_dataclass

    from sqa import __version__

    config = model.config
    source = getattr(model, "checkpoint_metadata", {})
    return {
        "format": FORMAT,
        "kind": kind,
        "config": json.dumps(asdict(config) if is_dataclass(config) else dict(config)),
        "sample_rate": str(int(model.sample_rate)),
        "source_name": str(source.get("name") or ""),
        "source_sha256": str(source.get("sha256") or ""),
        # What commands read from a loaded model (e.g. a ranker's ``mos_head_trained``).
        "checkpoint_metadata": json.dumps(source, default=str),
        "sqa_version": __version__,
        "torch_version": torch.__version__,
    }


def export_onnx(
    model: nn.Module, kind: str, output: str | Path, *, force: bool = False
) -> list[GraphReport]:
    """Export, verify and atomically write every graph of ``model``.

    Args:
        model: Eval-mode model loaded by :func:`sqa.load_model`.
        kind: Its checkpoint kind (chooses the exporter).
        output: Destination ending in ``.onnx``; extra graphs go beside it (``X.pair.onnx``).
        force: Replace existing files.

    Returns:
        One :class:`GraphReport` per written graph.

    Raises:
        SqaError: Unsupported kind, bad destination, or outputs outside the tolerance.
    """
    _onnx_modules()
    output = Path(output)
    if output.suffix != ".onnx":
        raise SqaError(f"the ONNX output must end in .onnx, got {output}")
    graphs = exporter_for(kind)(model.eval())
    paths = [graph_path(output, graph.suffix) for graph in graphs]
    for path in paths:
        check_writable(path, force)
    lengths = tuple(VERIFY_SAMPLES)
    serialized, reports = [], []
    for graph, path in zip(graphs, paths, strict=True):
        data = trace(graph, lengths[0])
        difference = verify(data, graph, lengths)
        on_speech = float("nan")
        if graph.input_names[0] == "waveform":
            on_speech = verify(data, graph, lengths, speech=True)
        metadata = model_metadata(model, kind) | graph.metadata | {"graph": graph.suffix or "main"}
        metadata["max_difference"] = f"{difference:.3g}"
        metadata["max_difference_speech"] = f"{on_speech:.3g}"
        serialized.append(with_metadata(data, metadata))
        reports.append(GraphReport(path, difference, lengths, on_speech))
    for data, path in zip(serialized, paths, strict=True):  # all verified before any write
        with atomic_open(path, "wb") as stream:
            stream.write(data)
    return reports
