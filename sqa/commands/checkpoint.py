"""``sqa checkpoint``: inspect, verify and export checkpoints.

* ``sqa checkpoint info PATH|NAME`` prints kind, config, metadata and size of one checkpoint;
* ``sqa checkpoint verify`` checks every manifest entry (file present, sha256, loads, builds);
* ``sqa checkpoint export TRAIN_CKPT RELEASE_PATH`` writes a release checkpoint without the
  training state (optionally adding it to the manifest with ``--name``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqa.errors import SqaError
from sqa.fileio import dumps_json


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sqa checkpoint``."""
    parser = argparse.ArgumentParser(
        prog="sqa checkpoint", description="Inspect, verify and export model checkpoints."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="show what a checkpoint holds")
    info.add_argument("checkpoint", metavar="PATH|NAME", help="checkpoint file or manifest name")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    verify = actions.add_parser("verify", help="check every checkpoint listed in the manifest")
    verify.add_argument(
        "--no-build", action="store_true", help="check files and hashes only (no model import)"
    )
    export = actions.add_parser("export", help="training checkpoint -> release checkpoint")
    export.add_argument("training_checkpoint", metavar="TRAIN_CKPT")
    export.add_argument("release_path", metavar="RELEASE_PATH")
    export.add_argument("--force", action="store_true", help="overwrite RELEASE_PATH")
    export.add_argument("--name", help="also list the release under this manifest name")
    export.add_argument("--description", default="", help="manifest description (with --name)")
    export.add_argument(
        "--half", action="store_true", help="store float32 weights as float16 (half the size)"
    )
    return parser


def _summary(name_or_path: str) -> dict[str, Any]:
    from sqa import checkpoint

    path, name, entry = checkpoint.resolve_checkpoint(name_or_path)
    digest = checkpoint.file_sha256(path) if path.is_file() else None
    payload = checkpoint.load_checkpoint(path, sha256=entry.get("sha256"))
    state = payload["state_dict"]
    return {
        "file": str(path),
        "name": name,
        "sha256": digest,
        "size_bytes": path.stat().st_size,
        "format_version": payload["format_version"],
        "kind": payload["kind"],
        "state_dict_values": int(sum(tensor.numel() for tensor in state.values())),
        "tensors": len(state),
        "training_state": "training_state" in payload,
        "config": payload["config"],
        "metadata": payload["metadata"],
        "manifest": entry or None,
        "model_card": _model_card(name),
    }


def _model_card(name: str | None) -> str | None:
    from sqa.checkpoint import checkpoint_dir

    if name is None:
        return None
    card = checkpoint_dir() / f"{name}.md"
    return str(card) if card.is_file() else None


def _info(arguments: argparse.Namespace) -> int:
    summary = _summary(arguments.checkpoint)
    if arguments.json:
        print(dumps_json(summary, indent=2, default=str))
        return 0
    import yaml

    headline = ("name", "file", "sha256", "size_bytes", "format_version", "kind")
    for key in (*headline, "state_dict_values", "tensors", "training_state", "model_card"):
        if summary[key] is not None:
            print(f"{key}: {summary[key]}")
    for section in ("config", "metadata", "manifest"):
        if summary[section]:
            print(f"{section}:")
            text = yaml.safe_dump(json.loads(json.dumps(summary[section], default=str)))
            print("".join(f"  {line}\n" for line in text.splitlines()), end="")
    return 0


def _verify_entry(name: str, entry: dict[str, Any], build: bool) -> str | None:
    """Return why an entry fails, or ``None`` when it is fine."""
    from sqa import checkpoint

    path = checkpoint.checkpoint_dir() / entry["file"]
    if not path.is_file():
        return f"file {path} is missing"
    try:
        payload = checkpoint.load_checkpoint(path, sha256=entry["sha256"])
        if payload["kind"] != entry["kind"]:
            return f"manifest kind {entry['kind']!r} but the file holds {payload['kind']!r}"
        if "training_state" in payload:
            return "holds training state (export it with `sqa checkpoint export`)"
        if build:
            checkpoint.build_model(payload)
    except SqaError as error:
        return str(error)
    return None


def _verify(arguments: argparse.Namespace) -> int:
    from sqa.checkpoint import MANIFEST_NAME, checkpoint_dir, read_manifest

    manifest = read_manifest()
    if not manifest:
        print(f"{checkpoint_dir() / MANIFEST_NAME} lists no checkpoints")
        return 0
    failures = 0
    for name, entry in manifest.items():
        problem = _verify_entry(name, entry, build=not arguments.no_build)
        if problem is None:
            card = "" if _model_card(name) else " (no model card)"
            print(f"ok    {name}{card}")
        else:
            failures += 1
            print(f"FAIL  {name}: {problem}")
    print(f"{len(manifest) - failures} of {len(manifest)} checkpoints verified", file=sys.stderr)
    return 1 if failures else 0


def _export(arguments: argparse.Namespace) -> int:
    from sqa.checkpoint import export_release

    destination = export_release(
        Path(arguments.training_checkpoint),
        Path(arguments.release_path),
        force=arguments.force,
        name=arguments.name,
        description=arguments.description,
        half=arguments.half,
    )
    listed = f" and listed it as {arguments.name!r}" if arguments.name else ""
    print(f"wrote {destination}{listed}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Inspect, verify and export checkpoints."""
    arguments = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    handlers = {"info": _info, "verify": _verify, "export": _export}
    return handlers[arguments.action](arguments)
