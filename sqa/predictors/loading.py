"""Loading a predictor release or training checkpoint (no torch until a model is loaded)."""

from __future__ import annotations

from sqa.errors import CheckpointError, SqaError
from sqa.fileio import check_metric_name


def load_predictor(
    name_or_path: str,
    device: str = "cpu",
    purpose: str = "this command",
    backend: str | None = None,
) -> object:
    """Load a predictor checkpoint (file or release name), or an exported ONNX graph.

    Its metric names become file names (``predict --scp-dir``), so each must be a plain name.

    Args:
        name_or_path: Release name, checkpoint or ``.onnx`` file.
        device: Torch device (the ONNX backend runs on the CPU).
        purpose: What needs the model, for error messages.
        backend: ``torch`` or ``onnx`` (default: by the file's suffix).

    Raises:
        CheckpointError: Not a predictor, or a metric name that is not a plain name.
    """
    from sqa.export.runtime import choose_backend
    from sqa.predictors.model import MODEL_KIND

    if choose_backend(backend, name_or_path) == "onnx":
        from sqa.export.runtime import OnnxPredictor, open_graph

        model: object = OnnxPredictor(open_graph(name_or_path, (MODEL_KIND,), purpose))
    else:
        from sqa.checkpoint import load_model

        model = load_model(name_or_path, device=device, kinds=(MODEL_KIND,), purpose=purpose)
    for name in getattr(model, "metric_names", ()):
        try:
            check_metric_name(name, str(name_or_path))
        except SqaError as error:
            raise CheckpointError(str(error)) from None
    return model
