"""Run-level helpers of predictor training: the run's log, the usable records, licence notes.

:class:`TrainingLog` writes ``log.jsonl`` (plus TensorBoard scalars when asked) on rank 0 only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqa.data.records import AudioRecord
from sqa.errors import DataFormatError
from sqa.fileio import dumps_json
from sqa.predictors.model import UniVersaConfig


class TrainingLog:
    """Appends rows to ``<run>/log.jsonl`` and mirrors their scalars to TensorBoard if asked.

    Args:
        output: Run folder.
        tensorboard: Also write scalars to ``output/tensorboard``.
        enabled: Write anything at all (False on non-zero ranks).
    """

    def __init__(self, output: Path, *, tensorboard: bool, enabled: bool) -> None:
        self.output = output
        self.tensorboard = tensorboard
        self.enabled = enabled
        self.writer: Any = None

    def append(self, row: dict[str, Any]) -> None:
        """Append one row (a training summary or a validation result)."""
        if not self.enabled:
            return
        self.output.mkdir(parents=True, exist_ok=True)
        with open(self.output / "log.jsonl", "a", encoding="utf-8") as stream:
            stream.write(dumps_json(row) + "\n")
        if self.tensorboard:
            self._scalars(row)

    def _scalars(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.output / "tensorboard"))
        step = row["step"]
        for key in ("train_loss", "lr", "skipped"):
            if key in row:
                self.writer.add_scalar(f"train/{key}", row[key], step)
        validation = row.get("validation") or {}
        if "loss" in validation:
            self.writer.add_scalar("valid/loss", validation["loss"], step)
        for metric, values in validation.get("metrics", {}).items():
            for statistic, value in values.items():
                self.writer.add_scalar(f"valid/{metric}/{statistic}", value, step)
        self.writer.flush()


def front_end_licence(config: UniVersaConfig) -> str:
    """Licence note of the pretrained front end stored in checkpoints and model cards."""
    if config.front_end == "distillmos":
        from sqa.predictors.distillmos_frontend import DISTILLMOS_LICENSE

        return DISTILLMOS_LICENSE
    if config.front_end == "ssl":
        return f"see the licence of the SSL model in {config.ssl.path or 'its source folder'}"
    return "no pretrained weights"


def usable_training_records(records: list[AudioRecord], names: Sequence[str]) -> list[AudioRecord]:
    """The records with a label for at least one of ``names`` (a warning counts the others).

    Raises:
        DataFormatError: No record has any of the labels.
    """
    labelled = [r for r in records if any(math.isfinite(r.metrics.get(n, math.nan)) for n in names)]
    if len(labelled) < len(records):
        warnings.warn(
            f"{len(records) - len(labelled)} training files carry none of the model's metrics "
            "and are ignored",
            stacklevel=2,
        )
    if not labelled:
        raise DataFormatError(f"no training file has a label for any of: {', '.join(names)}")
    return labelled
