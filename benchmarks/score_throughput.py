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

from common import emit_summary, write_degraded_corpus

from sqa.metrics.registry import expand_metric_names
from sqa.metrics.runner import ScoreTask, run_tasks
from sqa.metrics.scorer import ScoringOptions

RATE = 16000


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
        pairs = write_degraded_corpus(Path(folder), arguments.files, arguments.duration)
        tasks = [ScoreTask("bench", Path(d).stem, d, r) for d, r in pairs]
        for jobs in arguments.jobs:
            results.append(measure(tasks, names, options, jobs))
            print(json.dumps(results[-1]), file=sys.stderr)
    summary = {
        "metrics": names,
        "dnsmos_mode": arguments.dnsmos_mode,
        "duration": arguments.duration,
        "runs": results,
    }
    emit_summary(summary, arguments.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
