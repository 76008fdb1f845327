"""Throughput of ``sqa score``: files/s for a metric set with 1 vs N worker processes.

Writes ``--files`` synthetic speech-like clips of ``--duration`` seconds (noise at random SNRs) plus
their clean references into a temporary folder, scores them with the same machinery as
``sqa score`` (:func:`sqa.metrics.runner.run_tasks`) once per ``--jobs`` value, and prints the
wall-clock files/s (model loading included, once per worker) and the mean per-file wall and CPU
time of every metric backend (CPU time is the meaningful cost on a shared machine). Example::

    python benchmarks/score_throughput.py --files 200 --jobs 1 2 --metrics all-offline
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile

from sqa.metrics.registry import expand_metric_names
from sqa.metrics.runner import ScoreTask, run_tasks
from sqa.metrics.scorer import ScoringOptions
from sqa.synthetic import add_noise_at_snr, speech_like

RATE = 16000


def write_corpus(folder: Path, files: int, duration: float) -> list[ScoreTask]:
    """Synthetic degraded clips and references; returns the scoring tasks."""
    generator = np.random.default_rng(0)
    tasks = []
    for index in range(files):
        clean = speech_like(duration, RATE, seed=index)
        noisy = add_noise_at_snr(clean, float(generator.uniform(-5, 25)), seed=10_000 + index)
        reference, degraded = folder / f"ref{index:04d}.wav", folder / f"deg{index:04d}.wav"
        soundfile.write(reference, clean, RATE)
        soundfile.write(degraded, noisy, RATE)
        tasks.append(ScoreTask("bench", f"deg{index:04d}", str(degraded), str(reference)))
    return tasks


def measure(
    tasks: list[ScoreTask], names: list[str], options: ScoringOptions, jobs: int
) -> dict[str, object]:
    """Score all tasks with ``jobs`` processes; wall time and per-backend mean seconds/file."""
    started = time.perf_counter()
    costs: dict[str, float] = defaultdict(float)
    cpu_costs: dict[str, float] = defaultdict(float)
    failed = 0
    cpu_started = time.process_time()
    for entry in run_tasks(tasks, names, options, jobs=jobs, progress=False):
        for backend, seconds in entry["seconds"].items():
            costs[backend] += seconds
            cpu_costs[backend] += entry["cpu_seconds"][backend]
        failed += bool(entry["errors"])
    wall = time.perf_counter() - started
    return {
        "jobs": jobs,
        "files": len(tasks),
        "wall_seconds": round(wall, 2),
        "files_per_second": round(len(tasks) / wall, 3),
        "files_with_failures": failed,
        "parent_cpu_seconds": round(time.process_time() - cpu_started, 2),
        "wall_seconds_per_file": {name: round(t / len(tasks), 4) for name, t in costs.items()},
        "cpu_seconds_per_file": {name: round(t / len(tasks), 4) for name, t in cpu_costs.items()},
        "cpu_seconds_per_file_total": round(sum(cpu_costs.values()) / len(tasks), 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a JSON summary plus a small table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--metrics", default="all-offline")
    parser.add_argument("--dnsmos-mode", choices=("full", "fast"), default="full")
    parser.add_argument("--output", help="also write the JSON summary here")
    arguments = parser.parse_args(argv)
    names = expand_metric_names(arguments.metrics)
    options = ScoringOptions(dnsmos_mode=arguments.dnsmos_mode)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        tasks = write_corpus(Path(folder), arguments.files, arguments.duration)
        for jobs in arguments.jobs:
            results.append(measure(tasks, names, options, jobs))
            print(json.dumps(results[-1]), file=sys.stderr)
    summary = {
        "metrics": names,
        "dnsmos_mode": arguments.dnsmos_mode,
        "duration": arguments.duration,
        "runs": results,
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if arguments.output:
        Path(arguments.output).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
