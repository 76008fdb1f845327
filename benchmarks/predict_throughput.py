"""Throughput of ``sqa predict`` versus the teacher metrics it imitates, in one run.

Writes ``--files`` synthetic degraded clips (speech-like signal plus noise at random SNRs) and their
clean references to a temporary folder, then measures on the same files:

* the predictor through the code path of ``sqa predict`` (audio loading, duration-packed batches,
  all 22 Track-2 heads in one forward), for the ``paper`` trunk (three 4-layer encoders, d=256) and
  the ``compact`` trunk (three 2-layer encoders, d=128); weights are random (speed does not depend
  on them). The paper trunk runs on ``--paper-front-end``: ``distillmos`` (default: the frozen
  Distill-MOS network shipped with distillmos), ``mel``, or ``ssl`` with ``--ssl-path`` (a local
  WavLM-Large gives the paper's exact model); the compact trunk runs on the log-mel front end;
* the teachers of ``sqa score`` (:func:`sqa.metrics.runner.run_tasks`) for the Track-2 metrics that
  are computable offline (by default pesq, estoi, sdr, lsd, mcd, dnsmos_ovrl, distill_mos).

``--checkpoint NAME`` (e.g. ``predictor-default``) measures that trained model instead of the two
random-weight trunks and, unless ``--teacher-metrics`` is given, the teachers it imitates.

Prints a JSON summary with files/s of each and the predictor/teacher speed ratios. Example::

    python benchmarks/predict_throughput.py --files 200 --duration 4 --threads 1
    python benchmarks/predict_throughput.py --checkpoint predictor-default --dnsmos-mode fast
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from common import emit_summary, write_degraded_corpus

from sqa.data.records import AudioRecord
from sqa.metrics.registry import OFFLINE_METRICS, TRACK2_KEYS
from sqa.predictors.inference import PredictionSettings, prediction_rows
from sqa.predictors.model import TrunkConfig, UniVersa, UniVersaConfig
from sqa.predictors.presets import compact_trunk

RATE = 16000


def predictor_config(name: str, front_end: str, ssl_path: str) -> UniVersaConfig:
    """``paper`` or ``compact`` configuration for the benchmark."""
    if name == "compact":
        return UniVersaConfig(front_end="mel", trunk=compact_trunk())
    config = UniVersaConfig(front_end=front_end, trunk=TrunkConfig())
    if front_end == "ssl":
        config = replace(config, ssl=replace(config.ssl, path=ssl_path))
    return config


def measure_predictor(
    config: UniVersaConfig | str, records: list[AudioRecord], batch_seconds: float
) -> dict[str, object]:
    """Files/s of the ``sqa predict`` path (model construction excluded, reported apart).

    ``config`` is a configuration (random weights) or a checkpoint file / manifest name.
    """
    started = time.perf_counter()
    torch.manual_seed(0)
    if isinstance(config, str):
        from sqa.predictors.loading import load_predictor

        model = load_predictor(config)
        config = model.config
    else:
        model = UniVersa(config).eval()
    build_seconds = time.perf_counter() - started
    settings = PredictionSettings(batch_seconds=batch_seconds, max_batch_size=32)
    failures: list[str] = []
    started = time.perf_counter()
    rows = prediction_rows(model, records, settings, lambda r, m: failures.append(m))
    wall = time.perf_counter() - started
    return {
        "front_end": config.front_end,
        "trunk": config.trunk.kind,
        "parameters_million": round(model.count_parameters()["total"] / 1e6, 2),
        "heads": len(model.metric_names),
        "files": len(rows),
        "failed": len(failures),
        "build_seconds": round(build_seconds, 2),
        "wall_seconds": round(wall, 2),
        "files_per_second": round(len(rows) / wall, 3),
    }


def measure_teachers(
    pairs: list[tuple[str, str]], names: list[str], dnsmos_mode: str = "full"
) -> dict[str, object]:
    """Files/s of the ``sqa score`` teachers (one process, model loading included)."""
    from sqa.metrics.runner import ScoreTask, run_tasks
    from sqa.metrics.scorer import ScoringOptions

    tasks = [ScoreTask("bench", Path(d).stem, d, r) for d, r in pairs]
    costs: dict[str, float] = {}
    started = time.perf_counter()
    options = ScoringOptions(dnsmos_mode=dnsmos_mode)
    for entry in run_tasks(tasks, names, options, jobs=1, progress=False):
        for backend, seconds in entry["seconds"].items():
            costs[backend] = costs.get(backend, 0.0) + seconds
    wall = time.perf_counter() - started
    return {
        "metrics": names,
        "files": len(tasks),
        "wall_seconds": round(wall, 2),
        "files_per_second": round(len(tasks) / wall, 3),
        "seconds_per_file": {k: round(v / len(tasks), 4) for k, v in costs.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--batch-seconds", type=float, default=60.0)
    parser.add_argument(
        "--paper-front-end", choices=("distillmos", "mel", "ssl"), default="distillmos"
    )
    parser.add_argument("--ssl-path", default="", help="local SSL model for --paper-front-end ssl")
    default_teachers = ",".join(name for name in TRACK2_KEYS if name in OFFLINE_METRICS)
    parser.add_argument("--teacher-metrics", help=f"default: {default_teachers}")
    parser.add_argument("--checkpoint", help="a trained predictor instead of the random trunks")
    parser.add_argument("--dnsmos-mode", choices=("full", "fast"), default="full")
    parser.add_argument("--output", help="also write the JSON summary here")
    arguments = parser.parse_args(argv)
    torch.set_num_threads(arguments.threads)
    teacher_text = arguments.teacher_metrics or default_teachers
    if arguments.checkpoint and not arguments.teacher_metrics:
        from sqa.predictors.loading import load_predictor

        teacher_text = ",".join(load_predictor(arguments.checkpoint).metric_names)
    teachers = [name.strip() for name in teacher_text.split(",") if name.strip()]
    with tempfile.TemporaryDirectory() as folder:
        pairs = write_degraded_corpus(Path(folder), arguments.files, arguments.duration)
        records = [
            AudioRecord(Path(d).stem, "bench", d, duration=arguments.duration) for d, _ in pairs
        ]
        predictors = {}
        candidates: dict[str, UniVersaConfig | str] = {
            name: predictor_config(name, arguments.paper_front_end, arguments.ssl_path)
            for name in ("paper", "compact")
        }
        if arguments.checkpoint:
            candidates = {arguments.checkpoint: arguments.checkpoint}
        for name, config in candidates.items():
            predictors[name] = measure_predictor(config, records, arguments.batch_seconds)
            print(json.dumps({name: predictors[name]}), file=sys.stderr)
        teacher = measure_teachers(pairs, teachers, arguments.dnsmos_mode)
        print(json.dumps({"teachers": teacher}), file=sys.stderr)
    summary = {
        "files": arguments.files,
        "duration_seconds": arguments.duration,
        "threads": arguments.threads,
        "predictors": predictors,
        "teachers": teacher,
        "speedup_vs_teachers": {
            name: round(result["files_per_second"] / teacher["files_per_second"], 2)
            for name, result in predictors.items()
        },
    }
    emit_summary(summary, arguments.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
