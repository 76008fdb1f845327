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


def load_ranker(name_or_path: str | None, device: str) -> Any:
    """Load a ranker checkpoint (our model kinds are registered on import)."""
    if not name_or_path:
        raise SqaError(NO_RANKER_MESSAGE)
    # Importing the model modules registers their kinds even without installed entry points.
    import rankers.cached
    import rankers.model
    import rankers.quality  # noqa: F401
    from sqa.checkpoint import load_model

    model = load_model(name_or_path, device=device)
    if not hasattr(model, "compare_features") and not hasattr(model, "compare_embeddings"):
        raise SqaError(f"{name_or_path} is not a pairwise ranker checkpoint")
    return model
