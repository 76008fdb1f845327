"""``sqa export onnx NAME_OR_CKPT --output model.onnx``: verified ONNX graphs of a model.

Predictors give one graph (waveform, lengths -> scores), late-fusion rankers two (``X.onnx``:
waveform, lengths -> embedding; ``X.pair.onnx``: embedding pair -> logit and MOS), restorers
one (waveform -> waveform). Every graph is checked against PyTorch in onnxruntime on several
lengths before it is written; see :mod:`sqa.export.onnx`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sqa export``."""
    parser = argparse.ArgumentParser(
        prog="sqa export", description="Export a model for deployment outside PyTorch."
    )
    formats = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    onnx = formats.add_parser("onnx", help="ONNX graphs (opset 17), verified in onnxruntime")
    onnx.add_argument("model", metavar="NAME_OR_CKPT", help="manifest name or checkpoint file")
    onnx.add_argument("--output", required=True, help="destination .onnx file")
    onnx.add_argument("--force", action="store_true", help="overwrite existing graphs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Export a checkpoint to ONNX and print each graph's verified difference."""
    arguments = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from sqa.checkpoint import load_model
    from sqa.export.onnx import export_onnx

    model = load_model(arguments.model, purpose="sqa export onnx")
    kind = model.checkpoint_metadata["kind"]
    reports = export_onnx(model, kind, arguments.output, force=arguments.force)
    for report in reports:
        lengths = ", ".join(str(samples) for samples in report.lengths)
        speech = report.speech_difference
        on_speech = "" if speech != speech else f", {speech:.2e} on speech-like audio"
        print(
            f"wrote {report.path} ({report.path.stat().st_size / 1e6:.1f} MB); max |onnx - torch| "
            f"= {report.max_difference:.2e} on random audio of {lengths} samples{on_speech}"
        )
    return 0
