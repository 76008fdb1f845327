"""``sqa simulate-systems`` (homologous system folders) and ``sqa make-noise``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sqa.audio import load_audio, save_audio
from sqa.commands.options import add_path_argument
from sqa.data.records import listed_path
from sqa.errors import SqaError
from sqa.fileio import write_rows

_WORKER: dict[str, Any] = {}


def systems_parser() -> argparse.ArgumentParser:
    """Arguments of ``sqa simulate-systems``."""
    parser = argparse.ArgumentParser(
        prog="sqa simulate-systems",
        description="Write many systems' versions of the same seeded clean segments: "
        "OUTPUT/systems/<system>/<utt>.wav, OUTPUT/clean/<utt>.wav and OUTPUT/systems.jsonl. "
        "Re-running adds only missing files (new systems or utterances).",
    )
    parser.add_argument(
        "--speech",
        required=True,
        nargs="+",
        type=Path,
        help="clean speech pools: folders, *.scp or listings",
    )
    parser.add_argument(
        "--noise", nargs="+", type=Path, default=[], help="noise pools (as --speech)"
    )
    parser.add_argument("--rir", nargs="+", type=Path, default=[], help="RIR pools (as --speech)")
    parser.add_argument("--systems", required=True, type=Path, help="YAML systems description")
    parser.add_argument("--output", required=True, type=Path, help="output folder")
    parser.add_argument("--count", type=int, default=100, help="number of utterances")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first utterance")
    parser.add_argument("--sample-rate", type=int, default=16000, help="rate of every file")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per utterance")
    parser.add_argument("--prefix", default="utt", help="utterance id prefix")
    parser.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="field added to each row"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    add_path_argument(parser)
    return parser


def _tags(items: Sequence[str]) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise SqaError(f"--tag {item!r}: expected KEY=VALUE")
        tags[key] = {"true": True, "false": False}.get(value.lower(), value)
    return tags


def _files(folders: Sequence[Path]) -> list[Path]:
    from sqa.simulation.files import pool_files

    return [path for folder in folders for path in pool_files(folder)]


def _builder(arguments: argparse.Namespace) -> Any:
    import yaml

    from se_finetune.systems import SystemBuilder, parse_system_set
    from sqa.simulation.simulate import SimulationConfig

    if not arguments.systems.is_file():
        raise SqaError(f"--systems {arguments.systems}: no such file")
    system_set = parse_system_set(yaml.safe_load(arguments.systems.read_text("utf-8")) or {})
    config = SimulationConfig(sample_rate=arguments.sample_rate, segment_seconds=arguments.duration)
    speech = _files(arguments.speech)
    if not speech:
        raise SqaError("--speech: no audio files")
    return SystemBuilder(system_set, config, speech, _files(arguments.noise), _files(arguments.rir))


def _initialise(arguments: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER["builder"] = _builder(arguments)
    _WORKER["arguments"] = arguments


def _utterance(index: int) -> list[dict[str, Any]]:
    """Build and write the missing files of utterance ``index``; return its listing rows."""
    builder, arguments = _WORKER["builder"], _WORKER["arguments"]
    seed = arguments.seed + index
    utterance = f"{arguments.prefix}{seed:06d}"
    output: Path = arguments.output
    names = [spec.name for spec in builder.system_set.systems]
    paths = {name: output / "systems" / name / f"{utterance}.wav" for name in names}
    clean_path = output / "clean" / f"{utterance}.wav"
    missing = {name for name, path in paths.items() if not path.is_file()}
    infos: dict[str, dict[str, Any]] = {}
    if missing or not clean_path.is_file():
        target, signals, infos = builder.build_utterance(seed, missing or None)
        if not clean_path.is_file():
            save_audio(clean_path, target, builder.rate)
        for name in missing:
            save_audio(paths[name], signals[name], builder.rate)
    rows = []
    for name in names:
        row = {"system_id": name, "sample_id": utterance, "utterance_id": utterance}
        row.update(audio_path=str(paths[name].resolve()), reference=str(clean_path.resolve()))
        row.update(_tags(arguments.tag))
        row["info"] = json.dumps(infos.get(name, {"seed": seed}), sort_keys=True)
        rows.append(row)
    return rows


def _run(arguments: argparse.Namespace) -> Iterator[list[dict[str, Any]]]:
    indices = range(arguments.count)
    if arguments.jobs <= 1:
        _initialise(arguments)
        yield from map(_utterance, indices)
        return
    with ProcessPoolExecutor(
        arguments.jobs, initializer=_initialise, initargs=(arguments,)
    ) as pool:
        yield from pool.map(_utterance, indices, chunksize=4)


def simulate_systems_main(argv: Sequence[str]) -> int:
    """Homologous system folders of known quality order.

    Usage: ``sqa simulate-systems --speech DIR --noise DIR --systems systems.yaml --output DIR``.
    """
    arguments = systems_parser().parse_args(list(argv))
    if arguments.count < 1:
        raise SqaError("--count must be at least 1")
    _tags(arguments.tag)
    _builder(arguments)  # validate the description and the folders before starting workers
    rows: list[dict[str, Any]] = []
    progress = tqdm(total=arguments.count, desc="simulate-systems", file=sys.stderr, disable=None)
    for utterance_rows in _run(arguments):
        rows += utterance_rows
        progress.update()
    progress.close()
    for row in rows:  # spelled by the path rule (--paths) in this process, not in the workers
        for key in ("audio_path", "reference"):
            row[key] = listed_path(row[key], arguments.output)
    write_rows(arguments.output / "systems.jsonl", rows, force=True)
    systems = sorted({row["system_id"] for row in rows})
    print(
        f"{arguments.count} utterance(s) x {len(systems)} system(s) in {arguments.output}",
        file=sys.stderr,
    )
    return 0


def noise_parser() -> argparse.ArgumentParser:
    """Arguments of ``sqa make-noise``."""
    from se_finetune.noise import NOISE_KINDS

    parser = argparse.ArgumentParser(
        prog="sqa make-noise",
        description="Write seeded procedural noise files (and optionally simulated RIRs).",
    )
    parser.add_argument("--output", required=True, type=Path, help="noise folder to write")
    parser.add_argument("--count", type=int, default=50, help="noise files")
    parser.add_argument("--kinds", default=",".join(NOISE_KINDS), help="comma-separated kinds")
    parser.add_argument(
        "--babble-speech", type=Path, help="speech pool for babble (folder, *.scp or listing)"
    )
    parser.add_argument("--rir-output", type=Path, help="also write simulated RIRs here")
    parser.add_argument("--rir-count", type=int, default=0, help="simulated RIRs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first file")
    parser.add_argument("--sample-rate", type=int, default=16000, help="rate of every file")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per noise file")
    return parser


def make_noise_main(argv: Sequence[str]) -> int:
    """Procedural noise and simulated RIRs.

    Usage: ``sqa make-noise --output DIR --count N [--rir-output DIR --rir-count M]``.
    """
    from se_finetune.noise import procedural_noise, simulated_rir

    arguments = noise_parser().parse_args(list(argv))
    kinds = [kind.strip() for kind in arguments.kinds.split(",") if kind.strip()]
    rate, length = arguments.sample_rate, int(arguments.duration * arguments.sample_rate)
    talkers = []
    if "babble" in kinds:
        files = _files([arguments.babble_speech]) if arguments.babble_speech else []
        talkers = [load_audio(path, sample_rate=rate)[0] for path in files[:200]]
    rows = []
    for index in tqdm(range(arguments.count), desc="make-noise", file=sys.stderr, disable=None):
        seed = arguments.seed + index
        kind = kinds[index % len(kinds)]
        noise = procedural_noise(kind, length, rate, np.random.default_rng(seed), talkers)
        # Unit RMS in, at most -12 dBFS RMS and 0.9 peak out (clicks have a high crest factor).
        scale = min(0.25, 0.9 / max(float(np.max(np.abs(noise))), 1e-9))
        path = save_audio(arguments.output / f"{kind}_{seed:05d}.wav", scale * noise, rate)
        rows.append({"file": path.name, "kind": kind, "seed": seed})
    write_rows(arguments.output / "noise.jsonl", rows, force=True)
    if arguments.rir_output and arguments.rir_count > 0:
        rir_rows = []
        for index in range(arguments.rir_count):
            seed = arguments.seed + index
            rir, description = simulated_rir(rate, np.random.default_rng(seed))
            peak = float(np.max(np.abs(rir))) or 1.0
            destination = arguments.rir_output / f"room_{seed:05d}.wav"
            path = save_audio(destination, rir / peak * 0.9, rate, subtype="FLOAT")
            rir_rows.append({"file": path.name, "seed": seed, **description})
        write_rows(arguments.rir_output / "rirs.jsonl", rir_rows, force=True)
    print(f"wrote {len(rows)} noise file(s) to {arguments.output}", file=sys.stderr)
    return 0
