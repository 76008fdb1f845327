"""Saving, loading, building and exporting checkpoints (see :mod:`sqa.checkpoint`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sqa.checkpoint.configs import to_plain
from sqa.checkpoint.manifest import (
    check_sha256,
    checkpoint_dir,
    file_sha256,
    resolve_checkpoint,
    update_manifest,
)
from sqa.checkpoint.reading import read_weights_only, shorten
from sqa.checkpoint.registry import describe_kind, describe_kinds, model_classes
from sqa.configs import config_from_dict, config_to_dict
from sqa.errors import CheckpointError, ConfigError, SqaError
from sqa.fileio import atomic_open, check_writable
from sqa.runs import environment_info

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "kind", "config", "state_dict", "metadata")


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    config: Any,
    *,
    kind: str,
    metadata: dict | None = None,
    training_state: dict | None = None,
) -> Path:
    """Save a model atomically in the checkpoint format.

    Args:
        path: Destination file (replaced atomically; its folder is created).
        model: The module whose ``state_dict`` is stored.
        config: Its config (dataclass or mapping), stored with :func:`config_to_dict`.
        kind: Registered model kind.
        metadata: Extra plain-type information (training data, scores, ...).
        training_state: Optimizer/scheduler/step state; marks a training checkpoint.

    Returns:
        The destination path.
    """
    model_classes(kind)
    payload: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": to_plain(config_to_dict(config), "config"),
        "state_dict": to_plain(dict(model.state_dict()), "state_dict"),
        "metadata": {
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": to_plain(environment_info(), "metadata.versions"),
            **to_plain(dict(metadata or {}), "metadata"),
        },
    }
    if training_state is not None:
        payload["training_state"] = to_plain(dict(training_state), "training_state")
    return _write_payload(Path(path), payload)


def _write_payload(destination: Path, payload: dict[str, Any]) -> Path:
    with atomic_open(destination, "wb") as stream:
        torch.save(payload, stream)
    return destination


def load_checkpoint(path: str | os.PathLike[str], *, sha256: str | None = None) -> dict:
    """Read and validate a checkpoint payload (weights only; never runs code from the file).

    Args:
        path: Checkpoint file.
        sha256: Expected hex digest of the file, checked before unpickling.

    Returns:
        The payload dict (see the module docstring).

    Raises:
        CheckpointError: Missing file, hash mismatch, non-plain content, unknown format.
    """
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"checkpoint file not found: {source}")
    if sha256 is not None:
        check_sha256(source, sha256)
    return _validate_payload(read_weights_only(source), source)


def _validate_payload(payload: Any, source: Path) -> dict:
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{source} is not an sqa checkpoint (no format_version)")
    version = payload["format_version"]
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{source} has checkpoint format_version {shorten(repr(version), 40)}; this version "
            f"of sqa reads format_version {FORMAT_VERSION} (upgrade sqa or re-export the "
            "checkpoint)"
        )
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{source} lacks checkpoint field(s): {', '.join(missing)}")
    if not isinstance(payload["kind"], str) or not isinstance(payload["state_dict"], dict):
        raise CheckpointError(f"{source}: 'kind' must be a string and 'state_dict' a dict")
    if not isinstance(payload["config"], dict) or not isinstance(payload["metadata"], dict):
        raise CheckpointError(f"{source}: 'config' and 'metadata' must be dicts")
    strays = [key for key, value in payload["state_dict"].items() if not torch.is_tensor(value)]
    if strays:
        raise CheckpointError(
            f"{source}: state_dict entry {shorten(repr(strays[0]), 80)} is not a tensor"
        )
    return payload


def build_model(payload: Mapping[str, Any]) -> nn.Module:
    """Rebuild a module from a payload; it is returned in eval mode on the CPU.

    Raises:
        CheckpointError: Unknown kind, bad config, or weights that do not fit the module.
    """
    config_class, module_class = model_classes(payload["kind"])
    try:
        config = config_from_dict(config_class, payload["config"])
    except ConfigError as error:  # a stored config that no longer fits its class
        raise CheckpointError(f"bad config in the checkpoint: {shorten(error)}") from None
    try:
        model = module_class(config)
    except SqaError:  # a missing dependency or weights folder says so itself
        raise
    except Exception as error:  # any stored value the module cannot be built from
        raise CheckpointError(
            f"cannot build a {payload['kind']!r} model from the config in the checkpoint "
            f"({type(error).__name__}: {shorten(error)})"
        ) from None
    _check_weights(model, payload["state_dict"], module_class.__name__)
    model.load_state_dict(payload["state_dict"], strict=True)
    model.checkpoint_metadata = {
        **dict(payload.get("metadata") or {}),
        "kind": payload["kind"],
        "format_version": payload["format_version"],
    }
    return model.eval()


def _check_weights(model: nn.Module, weights: Mapping[str, Any], class_name: str) -> None:
    """Compare names and shapes first, so that a mismatch is one line rather than one per tensor."""
    expected = model.state_dict()
    missing = [name for name in expected if name not in weights]
    unexpected = [name for name in weights if name not in expected]
    wrong = [
        f"{name} {list(weights[name].shape)} (the model has {list(tensor.shape)})"
        for name, tensor in expected.items()
        if name in weights and weights[name].shape != tensor.shape
    ]
    problems = [
        f"{len(items)} {what}, e.g. {shorten(items[0], 120)}"
        for items, what in (
            (wrong, "tensor(s) of the wrong shape"),
            (missing, "tensor(s) missing"),
            (unexpected, "unexpected tensor(s)"),
        )
        if items
    ]
    if problems:
        raise CheckpointError(
            f"weights do not fit a {class_name} built from the stored config: "
            + "; ".join(problems)
        )


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    device: str = "cpu",
    kinds: Sequence[str] | None = None,
    purpose: str = "this command",
) -> nn.Module:
    """Load a model by manifest name (sha256 checked) or by path, in eval mode.

    A path that is listed in the manifest is hash-checked too. The returned module carries
    ``checkpoint_metadata`` (stored metadata plus kind, name, file and sha256).

    Args:
        name_or_path: Manifest name or checkpoint file.
        device: Torch device to move the model to.
        kinds: Model kinds the caller can use (``None``: any); checked before the model is built.
        purpose: What needs the model, for the error message (e.g. ``"sqa enhance --model"``).

    Raises:
        CheckpointError: Anything wrong with the file, or a kind the caller cannot use.
    """
    path, name, entry = resolve_checkpoint(name_or_path)
    if name is not None and not path.is_file():
        raise CheckpointError(
            f"checkpoint {name!r} is listed in the manifest but {path} is missing "
            "(see checkpoints/README.md)"
        )
    digest = check_sha256(path, entry["sha256"]) if entry else file_sha256(path)
    payload = load_checkpoint(path)
    if entry and entry["kind"] != payload["kind"]:
        raise CheckpointError(
            f"manifest says {name!r} is a {entry['kind']!r} model "
            f"but {path} holds {shorten(repr(payload['kind']), 60)}"
        )
    if kinds is not None and payload["kind"] not in kinds:
        raise CheckpointError(
            f"{path} is a {describe_kind(payload['kind'])} checkpoint; {purpose} needs "
            f"{describe_kinds(kinds)}"
        )
    model = build_model(payload)
    model.checkpoint_metadata.update({"name": name, "file": str(path), "sha256": digest})
    return model.to(device)


def export_release(
    training_checkpoint: str | os.PathLike[str],
    release_path: str | os.PathLike[str],
    *,
    force: bool = False,
    name: str | None = None,
    description: str | None = None,
    half: bool = False,
) -> Path:
    """Write a release checkpoint from a training one (optimizer and other training state dropped).

    The model is rebuilt once to prove the release loads. With ``name``, the release is also
    added to the manifest of :func:`checkpoint_dir` (file relative to it when inside it).

    Args:
        training_checkpoint: Checkpoint written during training.
        release_path: Destination of the release checkpoint.
        force: Overwrite an existing destination.
        name: Manifest name to register the release under.
        description: One-line description for the manifest entry.
        half: Store float32 tensors as float16 (half the size; loading copies them back into
            the model's float32 parameters, so only the stored precision changes).

    Returns:
        The release path.
    """
    source = Path(training_checkpoint)
    destination = check_writable(release_path, force)
    if destination.exists() and destination.resolve() == source.resolve():
        raise CheckpointError("the release path must differ from the training checkpoint")
    payload = load_checkpoint(source)
    release = {key: payload[key] for key in REQUIRED_KEYS}
    if half:
        release["state_dict"] = {
            key: value.half() if value.dtype == torch.float32 else value
            for key, value in payload["state_dict"].items()
        }
    release["metadata"] = {
        **dict(payload["metadata"]),
        "storage": "float16" if half else "as trained",
        "exported_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "exported_from": source.name,
        "source_sha256": file_sha256(source),
    }
    build_model(release)
    _write_payload(destination, release)
    if name is not None:
        _register_release(name, destination, release, description)
    return destination


def _register_release(
    name: str, destination: Path, release: Mapping[str, Any], description: str | None
) -> None:
    directory = checkpoint_dir().resolve()
    resolved = destination.resolve()
    try:
        file_entry = resolved.relative_to(directory).as_posix()
    except ValueError:
        file_entry = str(resolved)
    entry: dict[str, Any] = {
        "file": file_entry,
        "sha256": file_sha256(destination),
        "kind": release["kind"],
        "description": description or "",
    }
    sample_rate = dict(release["config"]).get("sample_rate") if release["config"] else None
    if sample_rate is not None:
        entry["sample_rate"] = sample_rate
    update_manifest(name, entry, directory)
