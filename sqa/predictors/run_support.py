"""Run-level helpers of predictor training: the ``torchrun`` process group and the run's log.

:class:`TrainingLog` writes ``log.jsonl`` (plus TensorBoard scalars when asked) on rank 0 only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqa.fileio import dumps_json


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
