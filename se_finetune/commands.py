"""``sqa enhance``, ``sqa simulate`` and ``sqa finetune``.

``sqa enhance --model`` takes a neural enhancer name from :mod:`sqa.simulation.neural` or a restorer
checkpoint; without it, the ``restorer-default`` release of the checkpoint manifest.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from sqa.audio import AUDIO_EXTENSIONS, load_audio, resample, save_audio
from sqa.commands.options import (
    add_backend_argument,
    add_config_arguments,
    add_resume_arguments,
    deprecated_alias,
)
from sqa.commands.sources import add_run_arguments, add_source_arguments
from sqa.errors import AudioError, CheckpointError, NothingUsableError, SqaError
from sqa.fileio import check_writable, dumps_json, inside, write_rows
from sqa.runs import check_resume

if TYPE_CHECKING:  # torch is imported when a model runs, so `--help` stays fast
    from torch import nn

PEAK_SAFE = 0.99
DEFAULT_RESTORER = "restorer-default"
NO_RESTORER_MESSAGE = (
    "no default restorer ships ({name!r} is not in {manifest}): pass --model "
    "dfn3|rnnoise|nsnet2|gtcrn (a neural enhancer) or a restorer checkpoint (path or name)"
)


def _audio_files(folder: Path) -> list[Path]:
    from sqa.data.folders import list_audio

    if not folder.is_dir():
        raise SqaError(f"{folder}: input folder does not exist")
    files = list_audio(folder, recursive=True)
    if not files:
        raise SqaError(f"{folder}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    return files


def restore(model: nn.Module, samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Run any restorer on one signal; same length and rate out, peak-safe.

    A restorer whose ``forward`` takes a sample rate (e.g. BSRNN) gets the file's rate when it
    is at most its own ``sample_rate``; otherwise the signal is resampled to the model's rate
    and back.

    Args:
        model: Restorer with ``forward(waveform (B, T)[, sample_rate]) -> (B, T)``.
        samples: Signal ``(T,)``.
        sample_rate: Its rate in Hz.

    Returns:
        float32 ``(T,)`` with peak at most 0.99.
    """
    model_rate = int(getattr(model, "sample_rate", sample_rate))
    takes_rate = len(inspect.signature(model.forward).parameters) >= 2
    work_rate = sample_rate if takes_rate and sample_rate <= model_rate else model_rate
    signal = resample(samples, sample_rate, work_rate)
    import torch

    with torch.no_grad():
        batch = torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32))[None]
        output = (model(batch, work_rate) if takes_rate else model(batch))[0].numpy()
    output = resample(output, work_rate, sample_rate)[: samples.shape[0]]
    output = np.pad(output, (0, samples.shape[0] - output.shape[0])).astype(np.float32)
    if not np.isfinite(output).all():
        raise AudioError("the restorer produced NaN/Inf samples")
    return peak_safe(output)


def peak_safe(output: np.ndarray) -> np.ndarray:
    """Scale ``output (T,)`` down to a peak of 0.99 when it is louder (files never clip)."""
    peak = float(np.max(np.abs(output))) if output.size else 0.0
    return output * (PEAK_SAFE / peak) if peak > PEAK_SAFE else output


def enhance_parser() -> argparse.ArgumentParser:
    """Arguments of ``sqa enhance``."""
    from sqa.simulation.neural import ENHANCERS

    parser = argparse.ArgumentParser(
        prog="sqa enhance",
        description="Run a pretrained neural enhancer or a restorer checkpoint on a folder "
        "(same file names, lengths and rates; peak-safe output).",
    )
    parser.add_argument(
        "--model",
        help=f"a neural enhancer ({', '.join(ENHANCERS)}; pip install 'sqa-suite[enhancers]') "
        "or a restorer checkpoint (path or manifest name); "
        f"default: the {DEFAULT_RESTORER!r} release when installed",
    )
    add_backend_argument(parser, "--model")
    source = add_source_arguments(parser)
    source.add_argument(
        "--input", type=Path, help="folder tree of degraded audio (mirrored into --output)"
    )
    parser.add_argument(
        "--output",
        required=True,
        type=Path,
        help="folder for restored audio (<system>/<sample>.wav for the other inputs)",
    )
    add_run_arguments(parser, device=False)
    return parser


def _default_restorer() -> str:
    """The ``restorer-default`` release, or one clear line saying that none is installed."""
    from sqa.checkpoint import MANIFEST_NAME, checkpoint_dir
    from sqa.checkpoint.manifest import choose_release

    manifest = checkpoint_dir() / MANIFEST_NAME
    missing = NO_RESTORER_MESSAGE.format(name=DEFAULT_RESTORER, manifest=manifest)
    return choose_release(None, DEFAULT_RESTORER, "sqa enhance", missing)


def load_enhancer(
    name: str | None, backend: str | None = None
) -> Callable[[np.ndarray, int], np.ndarray]:
    """``f(samples (T,), rate) -> (T,)`` peak-safe, for a neural name or a restorer checkpoint.

    ``backend="onnx"`` (the default for a ``.onnx`` file) runs an exported restorer graph.

    Raises:
        MissingDependencyError: For a neural enhancer whose package is not installed.
        CheckpointError: For a name that is neither a neural enhancer nor a checkpoint.
    """
    from sqa.simulation.neural import ENHANCERS

    if name in ENHANCERS:
        enhancer = ENHANCERS[name]
        enhancer.ensure_installed()  # fail before any file is read, not on the first one
        return lambda samples, rate: peak_safe(enhancer(samples, rate))
    from se_finetune.bsrnn import RESTORER_KINDS  # registers the kind without entry points
    from sqa.checkpoint import load_model
    from sqa.export.runtime import choose_backend

    if choose_backend(backend, name) == "onnx":
        from se_finetune.export import load_onnx_restorer

        restorer = load_onnx_restorer(name or _default_restorer())
        return lambda samples, rate: restore(restorer, samples, rate)

    try:
        chosen = name if name is not None else _default_restorer()
        model = load_model(chosen, kinds=RESTORER_KINDS, purpose="sqa enhance --model").eval()
    except CheckpointError as error:
        if name is None or Path(name).exists():
            raise
        # A mistyped enhancer name lands here too: say which names exist besides checkpoints.
        raise CheckpointError(f"{error}; neural enhancers: {', '.join(ENHANCERS)}") from None
    return lambda samples, rate: restore(model, samples, rate)


def _enhance_plan(arguments: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    """Input files and where their restored versions go (always inside ``--output``)."""
    if arguments.input:
        files = _audio_files(arguments.input)
        return files, [arguments.output / path.relative_to(arguments.input) for path in files]
    from sqa.commands.sources import records_from_arguments

    files, destinations = [], []
    for record in records_from_arguments(arguments):
        for value in (record.system_id, record.sample_id):
            # Blanks are fine in file names (only Kaldi ids refuse them); separators are not.
            if not value.strip() or "/" in value or "\\" in value or value in (".", ".."):
                raise SqaError(f"{value!r} cannot name a file inside {arguments.output}")
        source = Path(record.path)
        files.append(source)
        suffix = source.suffix.lower() if source.suffix else ".wav"
        # ids come from the listing: never a path outside --output
        destination = inside(arguments.output, record.system_id, record.sample_id, suffix=suffix)
        destinations.append(destination)
    return files, destinations


def enhance_main(argv: Sequence[str]) -> int:
    """Run a restorer or a neural enhancer on audio files.

    Usage: ``sqa enhance [--model NAME|CKPT] (--input DIR | --dir DIR | --data LISTING | ...)
    --output DIR``.
    """
    arguments = enhance_parser().parse_args(list(argv))
    files, destinations = _enhance_plan(arguments)
    for destination in destinations:
        check_writable(destination, arguments.force)
    enhance = load_enhancer(arguments.model, arguments.backend)
    failures = 0
    plan = list(zip(files, destinations, strict=True))
    disable = True if arguments.no_progress else None  # tqdm: None = a bar only on a terminal
    for source, destination in tqdm(plan, desc="enhance", file=sys.stderr, disable=disable):
        try:
            samples, rate = load_audio(source)
            save_audio(destination, enhance(samples, rate), rate)
        except AudioError as error:
            failures += 1
            warnings.warn(f"skipped {source}: {error}", stacklevel=1)
    if failures == len(files):
        raise NothingUsableError(f"no file could be enhanced ({failures} skipped)")
    print(
        f"enhanced {len(files) - failures} file(s) into {arguments.output}"
        + (f"; skipped {failures}" if failures else ""),
        file=sys.stderr,
    )
    return 0


def simulate_parser() -> argparse.ArgumentParser:
    """Arguments of ``sqa simulate``."""
    parser = argparse.ArgumentParser(
        prog="sqa simulate",
        description="Build a folder of degraded/clean pairs with the seeded degradation pipeline.",
    )
    parser.add_argument(
        "--speech",
        required=True,
        type=Path,
        help="clean speech: a folder, a *.scp or a listing (wav.scp, data.jsonl, CSV, Kaldi dir)",
    )
    parser.add_argument("--noise", type=Path, help="noise pool (as --speech)")
    parser.add_argument("--rir", type=Path, help="room impulse response pool (as --speech)")
    parser.add_argument(
        "--output", required=True, type=Path, help="writes noisy/, clean/ and mix.jsonl here"
    )
    parser.add_argument("--count", type=int, default=100, help="number of pairs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first pair")
    parser.add_argument("--sample-rate", type=int, default=16000, help="output rate in Hz")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per pair")
    parser.add_argument("--config", type=Path, help="YAML with SimulationConfig fields")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    return parser


def _simulation_config(arguments: argparse.Namespace) -> object:
    import yaml

    from sqa.configs import config_from_dict
    from sqa.simulation.simulate import SimulationConfig

    data = {}
    if arguments.config:
        data = yaml.safe_load(arguments.config.read_text(encoding="utf-8")) or {}
    data.update(sample_rate=arguments.sample_rate, segment_seconds=arguments.duration)
    try:
        return config_from_dict(SimulationConfig, data)
    except SqaError as error:
        raise SqaError(f"bad simulation config: {error}") from None


def simulate_main(argv: Sequence[str]) -> int:
    """Build degraded/clean training pairs.

    Usage: ``sqa simulate --speech DIR --noise DIR [--rir DIR] --output DIR --count N``.
    """
    arguments = simulate_parser().parse_args(list(argv))
    from sqa.simulation.files import pool_files
    from sqa.simulation.simulate import Simulator, summarise_mix

    if arguments.count < 1:
        raise SqaError("--count must be at least 1")
    config = _simulation_config(arguments)
    manifest = check_writable(arguments.output / "mix.jsonl", arguments.force)
    simulator = Simulator(
        config, pool_files(arguments.speech), pool_files(arguments.noise), pool_files(arguments.rir)
    )  # type: ignore[arg-type]
    rows = []
    for index in tqdm(range(arguments.count), desc="simulate", file=sys.stderr, disable=None):
        pair = simulator(arguments.seed + index)
        name = f"sim_{arguments.seed + index:06d}.wav"
        save_audio(arguments.output / "noisy" / name, pair.noisy, pair.sample_rate)
        save_audio(arguments.output / "clean" / name, pair.target, pair.sample_rate)
        rows.append(
            {
                "file": name,
                **{k: v if not isinstance(v, list) else ";".join(v) for k, v in pair.info.items()},
            }
        )
    write_rows(manifest, rows, force=True)
    print(
        dumps_json({"pairs": len(rows), "mix": summarise_mix([p for p in rows])}), file=sys.stderr
    )
    return 0


def finetune_parser() -> argparse.ArgumentParser:
    """Arguments of ``sqa finetune``."""
    parser = argparse.ArgumentParser(
        prog="sqa finetune",
        description="SQA-guided fine-tuning of a restorer (--resume continues OUTPUT_DIR/last.pt).",
    )
    add_config_arguments(parser, "YAML FinetuneConfig (required)")
    parser.add_argument("--output-dir", help="override output_dir")
    parser.add_argument("--steps", type=int, help="override steps")
    parser.add_argument(
        "--device", help="override device (cpu, cuda); under torchrun: cuda:<LOCAL_RANK>"
    )
    add_resume_arguments(parser)
    parser.add_argument(
        "--no-resume",
        dest="force",
        nargs=0,
        action=deprecated_alias("--no-resume", "--force"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--progress", action="store_true", help="print one JSON line per step")
    return parser


def finetune_main(argv: Sequence[str]) -> int:
    """SQA-guided fine-tuning of a restorer.

    Usage: ``sqa finetune --config recipes/se_finetune/config.yaml``.
    """
    arguments = finetune_parser().parse_args(list(argv))
    from se_finetune.finetune import Finetuner
    from se_finetune.finetune_config import load_config, write_summary
    from se_finetune.guard import RewardHackingError
    from sqa.configs import parse_overrides

    if not arguments.config and arguments.resume and arguments.output_dir:
        arguments.config = str(Path(arguments.output_dir) / "config.yaml")  # the run's own
        if not Path(arguments.config).is_file():
            raise SqaError(f"nothing to resume: {arguments.config} does not exist")
    if not arguments.config:
        raise SqaError("sqa finetune needs --config YAML (or --resume --output-dir RUN)")
    overrides: dict[str, object] = parse_overrides(arguments.set)
    if arguments.output_dir:
        overrides["output_dir"] = arguments.output_dir
    if arguments.steps is not None:
        overrides["steps"] = arguments.steps
    if arguments.device:
        overrides["device"] = arguments.device
    config = load_config(arguments.config, overrides)
    if arguments.threads:
        import torch

        torch.set_num_threads(arguments.threads)
    writer = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 owns the run folder
    if writer:
        check_resume(Path(config.output_dir), resume=arguments.resume, force=arguments.force)
    finetuner = Finetuner(config)
    result = finetuner.run(resume=arguments.resume, progress=arguments.progress)
    if writer:
        write_summary(result, Path(config.output_dir) / "summary.json")
    if result.status == "collapsed":
        raise RewardHackingError(result.message)
    print(
        dumps_json({"step": result.step, "status": result.status, "evaluation": result.evaluation}),
        file=sys.stderr,
    )
    return 0
