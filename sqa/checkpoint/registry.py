"""Registry of model kinds: ``kind -> (ConfigClass, ModuleClass)``.

Model modules call :func:`register_model` at import time. They are found lazily through the
entry-point group ``sqa.models`` (each entry point's value is a module path to import; an optional
``:function`` is called after the import) and through the comma-separated module list in
``$SQA_MODEL_MODULES``, so ``sqa`` never imports ``rankers`` or ``se_finetune`` by name.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from importlib import metadata as importlib_metadata
from typing import Any

from torch import nn

from sqa.errors import CheckpointError

ENTRY_POINT_GROUP = "sqa.models"
MODULES_ENVIRONMENT_VARIABLE = "SQA_MODEL_MODULES"

_REGISTRY: dict[str, tuple[type, type[nn.Module]]] = {}
# What each kind is for, in words ("multi-metric predictor"), for errors about the wrong kind.
_ROLES: dict[str, str] = {}
# Entry points are imported once per process; failures are kept to explain an unknown kind.
_DISCOVERY: dict[str, Any] = {"done": False, "failures": {}}


def register_model(
    kind: str, config_class: type, module_class: type[nn.Module], *, role: str = ""
) -> None:
    """Register a model kind (called by model modules at import time).

    Args:
        kind: Name stored in checkpoints, e.g. ``"universa"``.
        config_class: Dataclass (or mapping type) the module is built from.
        module_class: ``nn.Module`` subclass whose constructor takes one config.
        role: What the model is, in words (e.g. ``"restorer"``), for error messages.

    Raises:
        CheckpointError: If ``kind`` is already taken by different classes.
    """
    if not isinstance(kind, str) or not kind:
        raise CheckpointError(f"model kind must be a non-empty string, got {kind!r}")
    previous = _REGISTRY.get(kind)
    if previous is not None and _qualified(previous) != _qualified((config_class, module_class)):
        raise CheckpointError(
            f"model kind {kind!r} is already registered to {_qualified(previous)[1]}"
        )
    _REGISTRY[kind] = (config_class, module_class)
    if role:
        _ROLES[kind] = role


def describe_kind(kind: object) -> str:
    """``'bsrnn' (restorer)``: a kind with its role when one was registered."""
    if kind not in _REGISTRY:
        _discover_models()
    text = repr(kind) if len(repr(kind)) <= 60 else repr(kind)[:57] + "..."
    role = _ROLES.get(kind) if isinstance(kind, str) else None
    return f"{text} ({role})" if role else text


def describe_kinds(kinds: Sequence[str]) -> str:
    """``a pairwise ranker checkpoint (kind 'urgent_pk' or 'urgent_pk_cached')``, by role."""
    _discover_models()
    by_role: dict[str, list[str]] = {}
    for kind in kinds:
        by_role.setdefault(_ROLES.get(kind, "model"), []).append(repr(kind))
    parts = []
    for role, names in by_role.items():
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        parts.append(f"a {role} checkpoint (kind {listed})")
    return " or ".join(parts)


def _qualified(classes: tuple[type, type]) -> tuple[str, str]:
    # Compare by name so re-importing a module (new class objects) is not a conflict.
    config_class, module_class = classes
    return (
        f"{config_class.__module__}.{config_class.__qualname__}",
        f"{module_class.__module__}.{module_class.__qualname__}",
    )


def _discover_models() -> None:
    """Import the modules named by the ``sqa.models`` entry points (and SQA_MODEL_MODULES)."""
    if _DISCOVERY["done"]:
        return
    _DISCOVERY["done"] = True
    targets = [entry.value for entry in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP)]
    extra = os.environ.get(MODULES_ENVIRONMENT_VARIABLE, "")
    targets += [name.strip() for name in extra.split(",") if name.strip()]
    for target in targets:
        module_name, _, attribute = target.partition(":")
        try:
            module = importlib.import_module(module_name.strip())
            if attribute:
                getattr(module, attribute.strip())()
        except Exception as error:  # a broken optional model must not break the others
            _DISCOVERY["failures"][target] = f"{type(error).__name__}: {error}"


def registered_kinds() -> list[str]:
    """Names of all model kinds known after entry-point discovery, sorted."""
    _discover_models()
    return sorted(_REGISTRY)


def model_classes(kind: str) -> tuple[type, type[nn.Module]]:
    """The ``(ConfigClass, ModuleClass)`` of a kind.

    Raises:
        CheckpointError: For an unknown kind, listing the known ones.
    """
    if kind not in _REGISTRY:
        _discover_models()
    if kind not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        message = f"unknown model kind {kind!r}; known kinds: {known}"
        failures = _DISCOVERY["failures"]
        if failures:
            details = "; ".join(f"{name} ({reason})" for name, reason in failures.items())
            message += f"; model modules that failed to import: {details}"
        raise CheckpointError(message)
    return _REGISTRY[kind]
