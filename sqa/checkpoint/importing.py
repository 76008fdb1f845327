"""Importing official checkpoints of other projects into our checkpoint format.

Each format (``urgent-pk``, ``universa-ext``, ``espnet-bsrnn``) is implemented next to the model
it targets and registered here by that model's module with :func:`register_importer`, so the
foundation never names the packages built on it (model modules are found through the
``sqa.models`` entry points). :func:`map_state_dict` is the shared name/shape check: every source
tensor must land on a target parameter of the same shape, and every target parameter must be
filled, unless the caller allows a partial import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sqa.checkpoint.manifest import file_sha256
from sqa.checkpoint.registry import registered_kinds
from sqa.errors import CheckpointError

_IMPORTERS: dict[str, tuple[str, str]] = {}


@dataclass
class ImportedModel:
    """What an importer returns: the built model and what goes into the checkpoint."""

    model: nn.Module
    config: Any
    kind: str
    metadata: dict[str, Any] = field(default_factory=dict)


Importer = Callable[[list[Path], bool], ImportedModel]


def register_importer(name: str, target: str, summary: str) -> None:
    """Register an import format (``target`` = ``"module:function"``, imported when used)."""
    _IMPORTERS[name] = (target, summary)


def importer_names() -> dict[str, str]:
    """Every registered format -> its one-line summary (after model discovery)."""
    registered_kinds()
    return {name: summary for name, (_, summary) in sorted(_IMPORTERS.items())}


def get_importer(name: str) -> Importer:
    """The import function of a format.

    Raises:
        CheckpointError: For an unknown format.
    """
    known = importer_names()
    if name not in known:
        raise CheckpointError(f"unknown import format {name!r}; use one of {', '.join(known)}")
    module, _, function = _IMPORTERS[name][0].partition(":")
    return getattr(importlib.import_module(module), function)


def source_record(path: Path) -> dict[str, str]:
    """``{"path", "sha256"}`` of a source file for the output's metadata."""
    return {"path": str(path), "sha256": file_sha256(path)}


def map_state_dict(
    model: nn.Module,
    source: Mapping[str, Any],
    rename: Callable[[str], str | None],
    *,
    allow_partial: bool,
    ignored: Mapping[str, str] | None = None,
    fill: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Load ``source`` into ``model`` by renamed keys, checking names and shapes.

    Args:
        model: The target model (its own initial values stay where nothing is mapped).
        source: Source name -> tensor.
        rename: Source name -> target name, or ``None`` for a tensor we have no place for.
        allow_partial: Accept unmapped source tensors and unfilled target tensors.
        ignored: Source names deliberately not mapped -> why (checked by the importer).
        fill: Target names that the source does not have on purpose -> what they hold.

    Returns:
        The mapping report for the metadata: ``mapping``, ``ignored``, ``filled``, ``unmapped``,
        ``missing``.

    Raises:
        CheckpointError: On a shape mismatch, or on unmapped / missing tensors without
            ``allow_partial``.
    """
    ignored, fill = dict(ignored or {}), dict(fill or {})
    target = model.state_dict()
    mapping: dict[str, str] = {}
    unmapped: list[str] = []
    for name, value in source.items():
        if name in ignored:
            continue
        destination = rename(name)
        if destination is None or destination not in target or not torch.is_tensor(value):
            unmapped.append(name)
            continue
        if tuple(value.shape) != tuple(target[destination].shape):
            raise CheckpointError(
                f"shape mismatch: {name} {tuple(value.shape)} -> {destination} "
                f"{tuple(target[destination].shape)}"
            )
        mapping[name] = destination
    filled = set(mapping.values())
    missing = [name for name in target if name not in filled and name not in fill]
    if (unmapped or missing) and not allow_partial:
        raise CheckpointError(
            f"incomplete import: unmapped source tensors {_names(unmapped)}; target tensors "
            f"without a source {_names(missing)} (use --allow-partial to accept)"
        )
    state = {destination: source[name] for name, destination in mapping.items()}
    model.load_state_dict(state, strict=False)
    return {
        "mapping": mapping,
        "ignored": ignored,
        "filled": fill,
        "unmapped": unmapped,
        "missing": missing,
    }


def _names(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:5])
    return f"{shown} (+{len(names) - 5} more)" if len(names) > 5 else shown


def require_tensors(payload: Any, key: str | None, source: Path) -> dict[str, torch.Tensor]:
    """The tensor dict under ``key`` of a loaded payload (or the payload itself for ``None``)."""
    found = payload if key is None else (payload.get(key) if isinstance(payload, dict) else None)
    if not isinstance(found, dict) or not found:
        raise CheckpointError(f"{source} has no {key or 'state dict'} of tensors")
    return {name: value for name, value in found.items() if torch.is_tensor(value)}
