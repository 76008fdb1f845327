"""Loading a predictor release or training checkpoint (no torch until a model is loaded)."""

from __future__ import annotations

from sqa.errors import SqaError


def load_predictor(name_or_path: str, device: str = "cpu") -> object:
    """Load a predictor checkpoint (file or release name) and check it is one."""
    import sqa.predictors.model  # noqa: F401  (registers the model kind)
    from sqa.checkpoint import load_model

    model = load_model(name_or_path, device=device)
    if not hasattr(model, "metric_names"):
        raise SqaError(f"{name_or_path} is not a multi-metric predictor checkpoint")
    return model
