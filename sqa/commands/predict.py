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

from sqa.commands.options import add_backend_argument, add_path_argument
from sqa.commands.sources import add_run_arguments, add_source_arguments, records_from_arguments
from sqa.data.records import AudioRecord
from sqa.errors import DataFormatError, NothingUsableError
from sqa.fileio import check_metric_name, check_writable, inside, write_rows
from sqa.predictors.loading import load_predictor

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
    add_backend_argument(parser, "--checkpoint")
    add_source_arguments(parser)
    parser.add_argument("--output", required=True, help="predictions .jsonl or .csv")
    parser.add_argument("--scp-dir", help="also write <metric>.scp files into this folder")
    parser.add_argument("--metrics", help="comma-separated subset of the model's heads")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="padded s per batch")
    parser.add_argument("--max-batch-size", type=int, default=32, help="files per batch at most")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    add_run_arguments(parser)
    add_path_argument(parser)
    return parser


def input_records(arguments: argparse.Namespace) -> list[AudioRecord]:
    """Records named by the source flags (:func:`sqa.commands.sources.records_from_arguments`);
    every file is predicted, also those not present in every system."""
    return records_from_arguments(arguments)


def choose_checkpoint(checkpoint: str | None) -> str:
    """``--checkpoint``, else the installed default predictor; says on stderr which one."""
    from sqa.checkpoint.manifest import choose_release

    return choose_release(checkpoint, DEFAULT_PREDICTOR, "sqa predict", NO_PREDICTOR_MESSAGE)


def metric_scp_keys(
    records: Sequence[AudioRecord], folder: str | Path
) -> dict[tuple[str, str], str]:
    """The id of every record in ``<metric>.scp`` files (``sample_id`` for one system, else
    ``<system_id>-<sample_id>``), checked before any work.

    Raises:
        DataFormatError: An id Kaldi cannot hold (a blank in it) or two records sharing one.
    """
    from sqa.data.records import check_scp_entries

    several = len({record.system_id for record in records}) > 1
    keys = {
        record.key: f"{record.system_id}-{record.sample_id}" if several else record.sample_id
        for record in records
    }
    if len(set(keys.values())) != len(keys):
        raise DataFormatError(f"--scp-dir {folder}: the files cannot be given unique ids")
    remedy = "rename those files, or leave out --scp-dir (the predictions file takes any name)"
    check_scp_entries(dict.fromkeys(keys.values(), "-"), f"--scp-dir {folder}", remedy)
    return keys


def scp_destinations(folder: str | Path, names: Sequence[str], force: bool) -> list[Path]:
    """The ``<metric>.scp`` path of every name, checked: called before predicting, so that an
    existing file (without ``--force``) or a bad name stops the run before any work."""
    # The names come from the checkpoint: plain names only, never a path.
    return [
        check_writable(inside(folder, check_metric_name(name, "the model"), suffix=".scp"), force)
        for name in names
    ]


def write_metric_scps(
    folder: str | Path, rows: Sequence[dict], keys: dict[tuple[str, str], str], force: bool
) -> list[Path]:
    """Write ``<metric>.scp`` files (``<id> value``, ids from :func:`metric_scp_keys`)."""
    from sqa.data.kaldi import write_scp

    names = list(dict.fromkeys(name for row in rows for name in row["metrics"]))
    written = []
    for name, destination in zip(names, scp_destinations(folder, names, force), strict=True):
        entries = {
            keys[(row["system_id"], row["sample_id"])]: f"{row['metrics'][name]:.6f}"
            for row in rows
        }
        written.append(write_scp(destination, entries))
    return written


def _set_threads(threads: int) -> None:
    """``--threads``: torch's CPU threads (0 keeps torch's default)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def main(argv: Sequence[str] | None = None) -> int:
    """Predict metric vectors per file."""
    arguments = build_parser().parse_args(argv)  # before torch is imported: --help stays fast
    from tqdm import tqdm

    from sqa.predictors.inference import PredictionSettings, prediction_rows

    check_writable(arguments.output, arguments.force)
    checkpoint = choose_checkpoint(arguments.checkpoint)
    _set_threads(arguments.threads)
    records = input_records(arguments)
    scp_keys = metric_scp_keys(records, arguments.scp_dir) if arguments.scp_dir else {}
    model = load_predictor(
        checkpoint, arguments.device, "sqa predict --checkpoint", arguments.backend
    )
    metrics = [m.strip() for m in arguments.metrics.split(",")] if arguments.metrics else None
    if arguments.scp_dir:
        scp_destinations(arguments.scp_dir, metrics or model.metric_names, arguments.force)
    settings = PredictionSettings(
        arguments.batch_seconds, arguments.max_batch_size, arguments.device, metrics
    )
    failures: list[str] = []

    def report(record: AudioRecord, message: str) -> None:
        failures.append(message)
        tqdm.write(
            f"sqa predict: skipping {record.system_id}/{record.sample_id}: {message}", sys.stderr
        )

    with tqdm(
        total=len(records), unit="file", disable=arguments.no_progress, file=sys.stderr
    ) as bar:
        rows = prediction_rows(model, records, settings, report, bar.update)
    if not rows:
        raise NothingUsableError(f"no file could be scored ({len(failures)} failed)")
    write_rows(arguments.output, rows, force=arguments.force)
    if arguments.scp_dir:
        write_metric_scps(arguments.scp_dir, rows, scp_keys, arguments.force)
    print(
        f"sqa predict: {len(rows)} files scored, {len(failures)} skipped -> {arguments.output}",
        file=sys.stderr,
    )
    return 0
