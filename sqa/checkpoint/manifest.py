"""The release manifest ``checkpoints/manifest.json``: name -> file, sha256, kind, ...

The folder is ``$SQA_CHECKPOINT_DIR`` when set, else ``checkpoints/`` next to the ``sqa`` package
(the repository root of a source checkout). File names in entries are relative to that folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqa.errors import CheckpointError, DataFormatError
from sqa.fileio import atomic_open

DIRECTORY_ENVIRONMENT_VARIABLE = "SQA_CHECKPOINT_DIR"
MANIFEST_NAME = "manifest.json"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str) -> str:
    """Return the file's sha256, or raise :class:`CheckpointError` naming both digests."""
    actual = file_sha256(path)
    if actual.lower() != expected.strip().lower():
        raise CheckpointError(
            f"sha256 mismatch for {path}: expected {expected.strip().lower()}, got {actual} "
            "(the file is corrupt, truncated or not the listed release)"
        )
    return actual


def checkpoint_dir() -> Path:
    """Folder of release checkpoints.

    ``$SQA_CHECKPOINT_DIR`` when set; else ``checkpoints/`` beside the ``sqa`` package (a source
    checkout or editable install); else ``<sys.prefix>/share/sqa-suite/checkpoints`` (where a
    wheel installs them).
    """
    configured = os.environ.get(DIRECTORY_ENVIRONMENT_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    # This file is sqa/checkpoint/manifest.py: parents[2] is the folder holding the sqa package.
    source = Path(__file__).resolve().parents[2] / "checkpoints"
    installed = Path(sys.prefix) / "share" / "sqa-suite" / "checkpoints"
    if not (source / MANIFEST_NAME).is_file() and (installed / MANIFEST_NAME).is_file():
        return installed
    return source


def read_manifest(directory: str | os.PathLike[str] | None = None) -> dict[str, dict[str, Any]]:
    """Read ``manifest.json`` (name -> entry); a missing manifest is an empty one.

    Raises:
        DataFormatError: If the manifest is not valid JSON or an entry lacks file/sha256/kind.
    """
    path = Path(directory) if directory is not None else checkpoint_dir()
    manifest_file = path / MANIFEST_NAME
    if not manifest_file.is_file():
        return {}
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{manifest_file} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise DataFormatError(f"{manifest_file} must hold an object name -> entry")
    for name, entry in manifest.items():
        lacking = [key for key in ("file", "sha256", "kind") if key not in (entry or {})]
        if lacking:
            raise DataFormatError(f"{manifest_file}: entry {name!r} lacks {', '.join(lacking)}")
    return manifest


def update_manifest(
    name: str, entry: Mapping[str, Any], directory: str | os.PathLike[str] | None = None
) -> Path:
    """Add or replace one manifest entry (written atomically, names sorted)."""
    path = Path(directory) if directory is not None else checkpoint_dir()
    manifest = read_manifest(path)
    manifest[name] = dict(entry)
    ordered = {key: manifest[key] for key in sorted(manifest)}
    with atomic_open(path / MANIFEST_NAME) as stream:
        stream.write(json.dumps(ordered, indent=2, ensure_ascii=False) + "\n")
    return path / MANIFEST_NAME


def resolve_checkpoint(name_or_path: str | os.PathLike[str]) -> tuple[Path, str | None, dict]:
    """Find a checkpoint by manifest name or file path.

    Returns:
        ``(file, name or None, manifest entry or {})``.

    Raises:
        CheckpointError: If it is neither a manifest name nor an existing file.
    """
    directory = checkpoint_dir()
    manifest = read_manifest(directory)
    key = os.fspath(name_or_path)
    if key in manifest:
        entry = manifest[key]
        return (directory / entry["file"]).resolve(), key, entry
    candidate = Path(key).expanduser()
    if candidate.is_file():
        resolved = candidate.resolve()
        for name, entry in manifest.items():
            if (directory / entry["file"]).resolve() == resolved:
                return resolved, name, entry
        return resolved, None, {}
    known = ", ".join(sorted(manifest)) or "none"
    raise CheckpointError(
        f"{key!r} is neither a checkpoint file nor a name in {directory / MANIFEST_NAME} "
        f"(known names: {known})"
    )


def choose_release(given: str | None, default: str, command: str, missing: str) -> str:
    """The model a command uses: ``given``, else the installed release ``default``.

    Says on stderr which one (and from which folder), so a run's log shows the model.

    Args:
        given: The model the user named (file or manifest name), or ``None``.
        default: The manifest name of the shipped default, e.g. ``"ranker-default"``.
        command: Prefix of the stderr line, e.g. ``"sqa rank"``.
        missing: The error message when no model is given and ``default`` is not installed.

    Raises:
        SqaError: With ``missing`` when neither is available.
    """
    from sqa.errors import SqaError

    if given:
        print(f"{command}: model {given}", file=sys.stderr)
        return given
    if default not in read_manifest():
        raise SqaError(missing)
    print(
        f"{command}: model {default} (the installed default, {checkpoint_dir()})", file=sys.stderr
    )
    return default
