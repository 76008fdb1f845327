"""Checkpoint payload check: what survives ``torch.load(weights_only=True)``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np
import torch

from sqa.errors import CheckpointError


def to_plain(value: Any, where: str) -> Any:
    """Check that a value survives ``weights_only`` loading (numpy is converted to torch)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {key: to_plain(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        converted = [to_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return converted if isinstance(value, list) else tuple(converted)
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, (bytes, torch.dtype)):
        return value
    for plain_type in (bool, int, float, str):
        # Subclasses (torch's TorchVersion is a str) would be pickled by class: refused on load.
        if isinstance(value, plain_type):
            return plain_type(value)
    raise CheckpointError(
        f"{where} holds a {type(value).__name__}, which a weights-only checkpoint cannot store"
    )
