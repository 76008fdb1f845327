"""Loading a predictor release or training checkpoint (no torch until a model is loaded)."""

from __future__ import annotations

from sqa.errors import CheckpointError, SqaError
from sqa.fileio import check_metric_name


def load_predictor(name_or_path: str, device: str = "cpu", purpose: str = "this command") -> object:
    """Load a predictor checkpoint (file or release name) and check it is one.

    Its metric names become file names (``predict --scp-dir``), so each must be a plain name.

    Raises:
        CheckpointError: Not a predictor checkpoint, or a metric name that is not a plain name.
    """
    from sqa.checkpoint import load_model
    from sqa.predictors.model import MODEL_KIND

    model = load_model(name_or_path, device=device, kinds=(MODEL_KIND,), purpose=purpose)
    for name in getattr(model, "metric_names", ()):
        try:
            check_metric_name(name, str(name_or_path))
        except SqaError as error:
            raise CheckpointError(str(error)) from None
    return model
