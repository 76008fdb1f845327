"""ONNX Runtime against PyTorch on the shipped models: speed-up and largest output difference.

Each model is exported with ``sqa export onnx`` into a temporary folder, then both back ends run
the same speech-like clips (batch of one, as ``sqa predict`` / ``rank`` / ``enhance`` on
single files) with the same thread count. The peer is the eager model measured in this run:
the printed ratio is ``torch seconds / onnx seconds``. The largest output difference on speech-like
audio is printed next to the eager model's own float32 rounding (the same clip through a float64
copy of the model): a graph cannot be expected to agree with float32 PyTorch more closely than
that.

Usage: ``python benchmarks/onnx_speedup.py [--threads 2] [--seconds 4] [--repeats 5]
[--models predictor-default,...] [--output summary.json]``
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import emit_summary

from sqa.checkpoint import load_model
from sqa.export.onnx import export_onnx
from sqa.export.runtime import open_graph
from sqa.synthetic import speech_like

MODELS = (
    "predictor-default",
    "ranker-default",
    "ranker-accurate",
    "restorer-default",
    "restorer-default-sqa",
)


def _eager_call(model: torch.nn.Module, kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The eager computation the main graph stands for, as ``(1, T) -> tensor``."""
    if kind == "universa":
        from sqa.export.predictor import eager_scores

        return lambda wave: eager_scores(model, wave, torch.tensor([wave.shape[1]]))
    if kind == "bsrnn":
        return model
    return lambda wave: model.embed(wave, torch.tensor([wave.shape[1]]))


def _best_of(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up (allocations, onnxruntime graph optimisation)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def measure(name: str, folder: Path, seconds: float, repeats: int) -> dict[str, float | str]:
    """Export one model and time both back ends on one clip of ``seconds`` seconds."""
    model = load_model(name).eval()
    kind = model.checkpoint_metadata["kind"]
    reports = export_onnx(model, kind, folder / f"{name}.onnx")
    graph = open_graph(reports[0].path)
    wave = torch.from_numpy(speech_like(seconds, int(model.sample_rate), seed=1))[None].float()
    feeds = [wave.numpy()] if kind == "bsrnn" else [wave.numpy(), np.array([wave.shape[1]])]
    eager = _eager_call(model, kind)
    with torch.inference_mode():
        expected = eager(wave).numpy()
        torch_seconds = _best_of(lambda: eager(wave), repeats)
        # The eager model's own float32 rounding: the same clip through a float64 copy.
        exact = _eager_call(copy.deepcopy(model).double(), kind)(wave.double()).numpy()
    (produced,) = graph.run(*feeds)
    onnx_seconds = _best_of(lambda: graph.run(*feeds), repeats)
    return {
        "model": name,
        "kind": kind,
        "torch_s": round(torch_seconds, 4),
        "onnx_s": round(onnx_seconds, 4),
        "speedup": round(torch_seconds / onnx_seconds, 2),
        "max_abs_difference": float(np.abs(produced - expected).max()),
        "torch_float32_vs_float64": float(np.abs(expected - exact).max()),
        "export_verified_difference": max(report.max_difference for report in reports),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="threads of both back ends")
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (best is kept)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names")
    parser.add_argument("--output", help="also write the JSON summary here")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    import os

    os.environ["SQA_ONNX_THREADS"] = str(arguments.threads)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in arguments.models.split(","):
            rows.append(measure(name.strip(), Path(folder), arguments.seconds, arguments.repeats))
            row = rows[-1]
            print(
                f"{row['model']:22s} torch {row['torch_s']:.3f} s  onnx {row['onnx_s']:.3f} s  "
                f"speed-up {row['speedup']:.2f}x  max|diff| {row['max_abs_difference']:.2e}  "
                f"(torch f32 vs f64 {row['torch_float32_vs_float64']:.2e})",
                flush=True,
            )
    emit_summary(
        {"threads": arguments.threads, "seconds": arguments.seconds, "models": rows},
        arguments.output,
    )


if __name__ == "__main__":
    main()
