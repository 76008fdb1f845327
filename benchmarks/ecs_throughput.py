"""Throughput of ECS ranking vs DNSMOS on the URGENT-24 scale (23 systems x 300 4-s utterances).

Synthetic systems (one speech-like utterance set, a different noise level per system) are written
as 16 kHz WAV files. For each ranker configuration (paper early fusion, compact early fusion,
cached late fusion; untrained weights: speed does not depend on them) the full pipeline is timed
on ``--systems`` x ``--utterances`` files: loading, encoding every file once, comparing every
system pair per utterance. Per-file and per-comparison costs are then extrapolated to the target
size (``K * M`` files, ``K (K - 1) / 2 * M`` comparisons), which is how the numbers for the full
6,900-file ranking are obtained when a full run is too slow for the machine. DNSMOS (speechmos
ONNX models, as used by ``sqa.metrics``) is timed on the same files and extrapolated per file.

Example (scaled down, 2 threads)::

    python benchmarks/ecs_throughput.py --systems 6 --utterances 4 --threads 2 \\
        --output benchmark.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from common import emit_summary

from rankers.cached import CachedPairwiseRanker, CachedRankerConfig
from rankers.inference import HomologousAudio, RankerScorer, upper_pairs
from rankers.model import PAPER_CONFIG, PairwiseRanker, compact_config
from sqa.synthetic import add_noise_at_snr, speech_like

MODELS: dict[str, Callable[[], torch.nn.Module]] = {
    "paper": lambda: PairwiseRanker(PAPER_CONFIG),
    "compact": lambda: PairwiseRanker(compact_config()),
    "cached": lambda: CachedPairwiseRanker(CachedRankerConfig()),
}


def build_ranker(name: str, device: str) -> torch.nn.Module:
    """An untrained preset from :data:`MODELS`, else a checkpoint file or manifest name."""
    if name in MODELS:
        return MODELS[name]()
    from rankers.loading import load_ranker

    return load_ranker(name, device)


def write_systems(folder: Path, systems: int, utterances: int, duration: float) -> dict:
    """Write ``folder/sys<k>/utt<i>.wav``; returns ``system -> utterance -> path``."""
    paths: dict[str, dict[str, Path]] = {}
    for index in range(utterances):
        clean = speech_like(duration, 16000, seed=index)
        for system in range(systems):
            name = f"sys{system:02d}"
            target = folder / name / f"utt{index:03d}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            snr = 40.0 - 40.0 * system / max(systems - 1, 1)
            soundfile.write(target, add_noise_at_snr(clean, snr, seed=system * 1000 + index), 16000)
            paths.setdefault(name, {})[f"utt{index:03d}"] = target
    return paths


def time_ranker(model: torch.nn.Module, paths: dict, device: str, batch_size: int) -> dict:
    """Time loading, encoding and pair comparison over all utterances of ``paths``."""
    systems = sorted(paths)
    utterances = sorted(paths[systems[0]])
    audio = HomologousAudio(paths, 16000)
    scorer = RankerScorer(model, device, batch_size)
    pairs = upper_pairs(len(systems), symmetric=False)
    first, second = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    load_time = encode_time = compare_time = 0.0
    with torch.inference_mode():
        scorer.encode(audio.load(systems[:2], utterances[0]))  # warm-up (allocator, kernels)
        for utterance in utterances:
            start = time.perf_counter()
            waves = audio.load(systems, utterance)
            loaded = time.perf_counter()
            encoded = scorer.encode(waves)
            _synchronise(device)
            encoded_at = time.perf_counter()
            scorer.compare(encoded, first, second)
            _synchronise(device)
            load_time += loaded - start
            encode_time += encoded_at - loaded
            compare_time += time.perf_counter() - encoded_at
    files = len(systems) * len(utterances)
    comparisons = len(pairs) * len(utterances)
    return {
        "files": files,
        "comparisons": comparisons,
        "wall_s": load_time + encode_time + compare_time,
        "load_s_per_file": load_time / files,
        "encode_s_per_file": encode_time / files,
        "compare_s_per_comparison": compare_time / comparisons,
    }


def _synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def extrapolate(measured: dict, systems: int, utterances: int) -> dict:
    """Wall time and comparisons/s for ``systems`` x ``utterances`` from per-unit costs."""
    files = systems * utterances
    comparisons = systems * (systems - 1) // 2 * utterances
    per_file = measured["load_s_per_file"] + measured["encode_s_per_file"]
    wall = files * per_file + comparisons * measured["compare_s_per_comparison"]
    return {
        "files": files,
        "comparisons": comparisons,
        "wall_s": wall,
        "comparisons_per_s": comparisons / wall,
    }


def time_dnsmos(paths: dict, limit: int, threads: int) -> dict:
    """Seconds per file for DNSMOS (load + score) over up to ``limit`` of the files."""
    from sqa.audio import load_audio

    try:
        from sqa.metrics.speechmos_models import dnsmos_model, dnsmos_scores

        dnsmos_model(threads)
        scorer = "sqa.metrics (speechmos ONNX)"

        def score(samples: np.ndarray) -> float:
            return dnsmos_scores(samples, sample_rate=16000)["dnsmos_ovrl"]
    except ImportError:
        from speechmos import dnsmos

        scorer = "speechmos.dnsmos.run"

        def score(samples: np.ndarray) -> float:
            return float(dnsmos.run(samples, 16000)["ovrl_mos"])

    files = [path for system in sorted(paths) for path in paths[system].values()][:limit]
    score(load_audio(files[0])[0])  # warm-up: session creation
    start = time.perf_counter()
    for path in files:
        score(load_audio(path, sample_rate=16000)[0])
    elapsed = time.perf_counter() - start
    return {"scorer": scorer, "files": len(files), "s_per_file": elapsed / len(files)}


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=23, help="systems actually run")
    parser.add_argument("--utterances", type=int, default=300, help="utterances actually run")
    parser.add_argument("--target-systems", type=int, default=23)
    parser.add_argument("--target-utterances", type=int, default=300)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument(
        "--models",
        default="paper,compact,cached",
        help="presets (paper, compact, cached; untrained) and/or checkpoints or manifest names",
    )
    parser.add_argument(
        "--paper-utterances", type=int, default=1, help="utterances used for the (slow) paper model"
    )
    parser.add_argument("--dnsmos-files", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output", help="write the results as JSON here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    torch.set_num_threads(arguments.threads)
    torch.manual_seed(0)
    results: dict[str, Any] = {"settings": vars(arguments), "models": {}}
    with tempfile.TemporaryDirectory() as folder:
        paths = write_systems(
            Path(folder), arguments.systems, arguments.utterances, arguments.duration
        )
        for name in arguments.models.split(","):
            model = build_ranker(name, arguments.device)
            subset = paths
            if name == "paper":
                subset = {
                    system: dict(list(items.items())[: arguments.paper_utterances])
                    for system, items in paths.items()
                }
            measured = time_ranker(model, subset, arguments.device, arguments.batch_size)
            target = extrapolate(measured, arguments.target_systems, arguments.target_utterances)
            results["models"][name] = {"measured": measured, "target": target}
            print(
                f"{name:8s} measured {measured['comparisons']} comparisons in "
                f"{measured['wall_s']:.1f} s; {arguments.target_systems}x"
                f"{arguments.target_utterances}: {target['wall_s']:.0f} s "
                f"({target['comparisons_per_s']:.0f} comparisons/s)",
                file=sys.stderr,
            )
        dnsmos = time_dnsmos(paths, arguments.dnsmos_files, arguments.threads)
        total = arguments.target_systems * arguments.target_utterances
        dnsmos["target_wall_s"] = dnsmos["s_per_file"] * total
        results["dnsmos"] = dnsmos
        print(
            f"dnsmos   {dnsmos['s_per_file'] * 1000:.1f} ms/file; {total} files: "
            f"{dnsmos['target_wall_s']:.0f} s",
            file=sys.stderr,
        )
        for name, entry in results["models"].items():
            # > 1: the ranker ranks the target set faster than DNSMOS scores its files
            entry["speed_vs_dnsmos"] = dnsmos["target_wall_s"] / entry["target"]["wall_s"]
            print(f"{name}: {entry['speed_vs_dnsmos']:.2f}x DNSMOS speed", file=sys.stderr)
    emit_summary(results, arguments.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
