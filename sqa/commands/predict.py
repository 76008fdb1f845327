"""``sqa predict``: metric vectors per file from a trained multi-metric predictor.

Input is a folder (``--dir``: audio files directly inside form one system named after the folder;
otherwise each sub-folder is a system), a Kaldi ``wav.scp`` (``--scp``) or a Track-2 ``data.jsonl``
(``--data``). Output is one row per readable file ``{"sample_id", "system_id", "metrics": {...}}``
as JSONL or CSV (by suffix), optionally also ``<metric>.scp`` files. Unreadable files are reported
on stderr and skipped.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sqa.commands.options import add_path_argument
from sqa.data.records import AudioRecord
from sqa.errors import DataFormatError, SqaError
from sqa.fileio import check_writable, write_rows

DEFAULT_PREDICTOR = "predictor-default"
NO_PREDICTOR_MESSAGE = (
    "no model given: pass --checkpoint CHECKPOINT|NAME (a file from `sqa train-predictor` or a "
    f"name in checkpoints/manifest.json); no default predictor ({DEFAULT_PREDICTOR!r}) is installed"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqa predict", description="Predict metric vectors per file with a trained predictor."
    )
    parser.add_argument(
        "--checkpoint",
        help=f"checkpoint file or release name (default: {DEFAULT_PREDICTOR!r} if installed)",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dir", help="folder of audio files (or of one folder per system)")
    source.add_argument("--scp", help="Kaldi wav.scp (its folder may hold utt2sys, utt2dur)")
    source.add_argument("--data", help="Track-2 data.jsonl")
    parser.add_argument("--output", required=True, help="predictions .jsonl or .csv")
    parser.add_argument("--scp-dir", help="also write <metric>.scp files into this folder")
    parser.add_argument("--metrics", help="comma-separated subset of the model's heads")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="padded s per batch")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_path_argument(parser)
    return parser


def _folder_records(folder: Path) -> list[AudioRecord]:
    from sqa.audio import is_audio_file
    from sqa.data import discover_systems

    if not folder.is_dir():
        raise DataFormatError(f"{folder} is not a folder")
    files = sorted(path for path in folder.iterdir() if path.is_file() and is_audio_file(path))
    if files:
        stems = [path.stem for path in files]
        if len(set(stems)) != len(stems):
            raise DataFormatError(f"{folder}: several audio files share a name stem")
        return [
            AudioRecord(p.stem, folder.resolve().name, str(p), utterance_id=p.stem) for p in files
        ]
    # One sub-folder per system; every file is predicted, not only the homologous ones.
    records = []
    for system, system_folder in discover_systems(folder).items():
        for path in sorted(system_folder.iterdir()):
            if path.is_file() and is_audio_file(path):
                records.append(AudioRecord(path.stem, system, str(path), utterance_id=path.stem))
    if not records:
        raise DataFormatError(f"{folder} holds no audio files")
    return records


def input_records(arguments: argparse.Namespace) -> list[AudioRecord]:
    """Records named by ``--dir``, ``--scp`` or ``--data``."""
    from sqa.data import read_kaldi_dir, read_track2_jsonl

    if arguments.dir:
        return _folder_records(Path(arguments.dir))
    if arguments.scp:
        scp = Path(arguments.scp)
        if not scp.is_file():
            raise DataFormatError(f"{scp} does not exist")
        if scp.name != "wav.scp":
            raise DataFormatError(f"--scp expects a file named wav.scp, got {scp.name}")
        return read_kaldi_dir(scp.parent)
    return read_track2_jsonl(arguments.data)


def choose_checkpoint(checkpoint: str | None) -> str:
    """``--checkpoint``, else the installed default predictor; says on stderr which one."""
    from sqa.checkpoint.manifest import choose_release

    return choose_release(checkpoint, DEFAULT_PREDICTOR, "sqa predict", NO_PREDICTOR_MESSAGE)


def load_predictor(name_or_path: str, device: str = "cpu") -> object:
    """Load a predictor checkpoint (file or release name) and check it is one."""
    import sqa.predictors.model  # noqa: F401  (registers the model kind)
    from sqa.checkpoint import load_model

    model = load_model(name_or_path, device=device)
    if not hasattr(model, "metric_names"):
        raise SqaError(f"{name_or_path} is not a multi-metric predictor checkpoint")
    return model


def write_metric_scps(folder: str | Path, rows: Sequence[dict], force: bool) -> list[Path]:
    """Write ``<metric>.scp`` files (``<system_id>-<sample_id> value`` when systems differ)."""
    from sqa.data.kaldi import write_scp

    systems = {row["system_id"] for row in rows}
    names = list(dict.fromkeys(name for row in rows for name in row["metrics"]))
    written = []
    for name in names:
        destination = check_writable(Path(folder) / f"{name}.scp", force)
        entries = {}
        for row in rows:
            key = (
                row["sample_id"] if len(systems) == 1 else f"{row['system_id']}-{row['sample_id']}"
            )
            entries[key] = f"{row['metrics'][name]:.6f}"
        written.append(write_scp(destination, entries))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sqa predict``."""
    arguments = build_parser().parse_args(argv)  # before torch is imported: --help stays fast
    from tqdm import tqdm

    from sqa.predictors.inference import PredictionSettings, prediction_rows

    check_writable(arguments.output, arguments.force)
    checkpoint = choose_checkpoint(arguments.checkpoint)
    if arguments.threads > 0:
        import torch

        torch.set_num_threads(arguments.threads)
    records = input_records(arguments)
    model = load_predictor(checkpoint, arguments.device)
    metrics = [m.strip() for m in arguments.metrics.split(",")] if arguments.metrics else None
    settings = PredictionSettings(
        arguments.batch_seconds, arguments.max_batch_size, arguments.device, metrics
    )
    failures: list[str] = []

    def report(record: AudioRecord, message: str) -> None:
        failures.append(message)
        tqdm.write(
            f"sqa predict: skipping {record.system_id}/{record.sample_id}: {message}", sys.stderr
        )

    with tqdm(total=len(records), unit="file", disable=arguments.quiet, file=sys.stderr) as bar:
        rows = prediction_rows(model, records, settings, report, bar.update)
    if not rows:
        raise SqaError(f"no file could be scored ({len(failures)} failed)")
    write_rows(arguments.output, rows, force=arguments.force)
    if arguments.scp_dir:
        write_metric_scps(arguments.scp_dir, rows, arguments.force)
    print(
        f"sqa predict: {len(rows)} files scored, {len(failures)} skipped -> {arguments.output}",
        file=sys.stderr,
    )
    return 0
