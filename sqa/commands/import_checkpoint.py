"""``sqa import FORMAT SOURCE... --output OUT.pt``: official checkpoints -> our checkpoint format.

Formats are registered by the model modules they target (see :mod:`sqa.checkpoint.importing`).
Sources are read without executing anything they carry; the output's metadata records each
source file's sha256 and the name mapping.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

FORMAT_CHOICES = ("urgent-pk", "universa-ext", "espnet-bsrnn")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sqa import``."""
    parser = argparse.ArgumentParser(
        prog="sqa import",
        description="Convert an official checkpoint into the suite's checkpoint format. "
        "urgent-pk: a Lightning .ckpt of URGENT-PK; universa-ext: the Track-2 model.pt, its "
        "config.yaml and the local SSL model folder (or its config.json); espnet-bsrnn: "
        "ESPnet's model.pth and config.yaml.",
    )
    parser.add_argument("format", choices=FORMAT_CHOICES, help="what the sources are")
    parser.add_argument("sources", nargs="+", type=Path, metavar="SOURCE")
    parser.add_argument("--output", required=True, type=Path, help="checkpoint to write")
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="accept unmapped source tensors or target tensors without a source (listed)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite --output")
    return parser


def main(argv: Sequence[str]) -> int:
    """Import an official URGENT-PK, Track-2 Uni-VERSA-Ext or ESPnet BSRNN checkpoint."""
    arguments = build_parser().parse_args(list(argv))
    from sqa.checkpoint import save_checkpoint  # torch: only once the arguments are parsed
    from sqa.checkpoint.importing import get_importer
    from sqa.fileio import check_writable

    destination = check_writable(arguments.output, arguments.force)
    imported = get_importer(arguments.format)(list(arguments.sources), arguments.allow_partial)
    metadata = {"imported_from": arguments.format, **imported.metadata}
    save_checkpoint(
        destination, imported.model, imported.config, kind=imported.kind, metadata=metadata
    )
    report = metadata.get("import", {})
    print(
        f"wrote {destination}: {imported.kind}, {len(report.get('mapping', {}))} tensors mapped, "
        f"{len(report.get('unmapped', []))} unmapped, {len(report.get('missing', []))} missing"
    )
    return 0
