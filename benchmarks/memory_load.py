"""Peak memory of ``sqa score`` and ``sqa rank`` as the number of files grows.

Each command runs as its own process (``python -m sqa ...``, exactly what a user runs); the
resident memory of the whole process tree (the command plus its ``--jobs`` workers) is sampled
from ``/proc`` every 50 ms and its peak printed. The peer of each large run is the same command on
a small input in the same run, so the printed ratio says whether memory grows with the input
(about 1.0: it does not). Example::

    python benchmarks/memory_load.py --score-files 100 500 --rank-systems 23 --rank-files 30 300
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import soundfile
from common import emit_summary

from sqa.synthetic import add_noise_at_snr, speech_like

RATE = 16000
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (0 for processes that ended)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        pending += _children(current)
    return total


def peak_of(command: list[str]) -> dict[str, Any]:
    """Run ``command``; its wall time, exit code and the peak resident memory of its tree."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        time.sleep(0.05)
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {error[-500:]}")
    wall = time.perf_counter() - started
    return {"peak_rss_mb": round(peak / 2**20, 1), "wall_s": round(wall, 1)}


def write_systems(folder: Path, systems: int, files: int, seconds: float) -> Path:
    """``folder/sysNN/uttKKK.wav`` (noise rising with the system) and ``folder/_reference``."""
    for index in range(files):
        clean = speech_like(seconds, RATE, seed=index)
        (folder / "_reference").mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / "_reference" / f"utt{index:03d}.wav", clean, RATE)
        for system in range(systems):
            snr = 30.0 - 30.0 * system / max(systems - 1, 1)
            target = folder / f"sys{system:02d}" / f"utt{index:03d}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(target, add_noise_at_snr(clean, snr, seed=system * 997 + index), RATE)
    return folder


def score_runs(folder: Path, counts: Sequence[int], arguments: argparse.Namespace) -> dict:
    """``sqa score --jobs J`` on one folder of ``count`` files for every count."""
    results = {}
    for count in counts:
        data = write_systems(folder / f"score{count}", 1, count, arguments.seconds)
        output = folder / f"score{count}.jsonl"
        command = [sys.executable, "-m", "sqa", "score", "--dir", str(data / "sys00")]
        command += ["--ref-dir", str(data / "_reference")]
        command += ["--metrics", arguments.metrics, "--jobs", str(arguments.jobs)]
        command += ["--output", str(output), "--no-progress"]
        results[count] = peak_of(command)
        print(f"score {count} files: {results[count]}", file=sys.stderr)
    return results


def rank_runs(folder: Path, counts: Sequence[int], arguments: argparse.Namespace) -> dict:
    """``sqa rank --root`` on ``systems`` x ``count`` files for every count."""
    results = {}
    for count in counts:
        root = write_systems(folder / f"rank{count}", arguments.rank_systems, count, 4.0)
        output = folder / f"rank{count}.csv"
        command = [sys.executable, "-m", "sqa", "rank", "--root", str(root)]
        command += ["--ranker", arguments.rank_model, "--output", str(output), "--no-progress"]
        results[count] = peak_of(command)
        print(f"rank {arguments.rank_systems}x{count}: {results[count]}", file=sys.stderr)
    return results


def ratios(results: dict) -> dict[str, float]:
    """Peak memory of every run relative to the smallest run of the same command."""
    smallest = results[min(results)]["peak_rss_mb"]
    return {
        str(count): round(entry["peak_rss_mb"] / smallest, 3) for count, entry in results.items()
    }


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--score-files", type=int, nargs="*", default=[100, 500])
    parser.add_argument("--metrics", default="sdr,estoi,dnsmos_ovrl,lsd")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each score file")
    parser.add_argument("--rank-systems", type=int, default=23)
    parser.add_argument("--rank-files", type=int, nargs="*", default=[30, 300])
    parser.add_argument("--rank-model", default="ranker-default")
    parser.add_argument("--output", help="also write the JSON summary here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    summary: dict[str, Any] = {"settings": vars(arguments)}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if arguments.score_files:
            summary["score"] = score_runs(folder, arguments.score_files, arguments)
            summary["score_peak_ratio"] = ratios(summary["score"])
        if arguments.rank_files:
            summary["rank"] = rank_runs(folder, arguments.rank_files, arguments)
            summary["rank_peak_ratio"] = ratios(summary["rank"])
    emit_summary(summary, arguments.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
