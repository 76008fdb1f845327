"""Loading a ranker release or training checkpoint (its model kinds registered on import)."""

from __future__ import annotations

from typing import Any

from sqa.errors import SqaError

DEFAULT_RANKER = "ranker-default"
NO_RANKER_MESSAGE = (
    "no ranker given: pass --ranker CHECKPOINT|NAME (a file from `sqa train-ranker` or a name in "
    f"checkpoints/manifest.json) or --scores TABLE; no default ranker ({DEFAULT_RANKER!r}) is "
    "installed"
)
# Every pairwise ranker kind: forward(wave_a, wave_b, lengths_a, lengths_b) -> .logit.
RANKER_KINDS = ("urgent_pk", "urgent_pk_cached", "urgent_pk_distillmos")


def load_ranker(
    name_or_path: str | None,
    device: str,
    purpose: str = "sqa rank --ranker",
    backend: str | None = None,
) -> Any:
    """Load a ranker checkpoint (our model kinds are registered on import).

    Raises:
        CheckpointError: A file that is not a pairwise ranker checkpoint (the kind is named).
    """
    if not name_or_path:
        raise SqaError(NO_RANKER_MESSAGE)
    from sqa.export.runtime import choose_backend

    if choose_backend(backend, name_or_path) == "onnx":
        from rankers.export import load_onnx_ranker

        return load_onnx_ranker(name_or_path, purpose)
    # Importing the model modules registers their kinds even without installed entry points.
    import rankers.cached
    import rankers.model
    import rankers.quality  # noqa: F401
    from sqa.checkpoint import load_model

    return load_model(name_or_path, device=device, kinds=RANKER_KINDS, purpose=purpose)
