"""Batched inference of the predictor over audio records (used by ``sqa predict`` and friends).

Files are grouped into batches by duration (:func:`pack_by_duration`), so little compute goes into
padding; each batch is zero-padded and passed with its lengths, and the model masks the padding.
Files that cannot be read (or fail validation) are reported through a callback and skipped; they
never stop the run and never produce a row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from sqa.audio import audio_duration, load_audio
from sqa.data.records import AudioRecord
from sqa.errors import AudioError, SqaError

ErrorCallback = Callable[[AudioRecord, str], None]


def pack_by_duration(
    durations: Sequence[float], max_batch_seconds: float, max_batch_size: int | None = None
) -> list[list[int]]:
    """Group items into batches whose padded length stays within a budget.

    Items are sorted from longest to shortest and filled greedily, so a batch's padded cost is
    ``count * (longest item)``. An item longer than the budget gets a batch of its own.

    Args:
        durations: Duration of each item in seconds.
        max_batch_seconds: Budget of padded seconds per batch.
        max_batch_size: Optional cap on items per batch.

    Returns:
        Lists of item indices (every index exactly once), longest batches first.
    """
    if max_batch_seconds <= 0:
        raise SqaError(f"the batch budget must be positive, got {max_batch_seconds} s")
    order = sorted(range(len(durations)), key=lambda index: (-durations[index], index))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0.0
    for index in order:
        candidate_longest = max(longest, durations[index])
        too_long = (len(current) + 1) * candidate_longest > max_batch_seconds
        too_many = max_batch_size is not None and len(current) >= max_batch_size
        if current and (too_long or too_many):
            batches.append(current)
            current, candidate_longest = [], durations[index]
        current.append(index)
        longest = candidate_longest
    if current:
        batches.append(current)
    return batches


def collate_waveforms(waveforms: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad 1-D arrays into a batch.

    Args:
        waveforms: Float arrays ``(T_i,)``.

    Returns:
        ``(B, max T_i)`` float32 batch and ``(B,)`` int64 lengths.
    """
    lengths = torch.tensor([len(waveform) for waveform in waveforms], dtype=torch.long)
    batch = torch.zeros(len(waveforms), int(lengths.max()), dtype=torch.float32)
    for row, waveform in enumerate(waveforms):
        batch[row, : len(waveform)] = torch.from_numpy(np.asarray(waveform, dtype=np.float32))
    return batch, lengths


@dataclass
class PredictionSettings:
    """Inference options.

    Attributes:
        batch_seconds: Padded seconds per batch.
        max_batch_size: Cap on files per batch.
        device: Torch device string.
        metrics: Subset of the model's metrics to report (``None``: all).
    """

    batch_seconds: float = 60.0
    max_batch_size: int | None = 32
    device: str = "cpu"
    metrics: Sequence[str] | None = None


def record_durations(
    records: Sequence[AudioRecord], on_error: ErrorCallback
) -> tuple[list[int], list[float]]:
    """Durations from the records or the file headers; unreadable files are reported and dropped.

    Returns:
        Indices of usable records and their durations in seconds.
    """
    usable, durations = [], []
    for index, record in enumerate(records):
        duration = record.duration
        if duration is None or not math.isfinite(duration) or duration <= 0:
            try:
                duration = audio_duration(record.path)
            except AudioError as error:
                on_error(record, str(error))
                continue
        usable.append(index)
        durations.append(float(duration))
    return usable, durations


def _load_batch(
    records: Sequence[AudioRecord], sample_rate: int, on_error: ErrorCallback
) -> tuple[list[int], list[np.ndarray]]:
    kept, waveforms = [], []
    for position, record in enumerate(records):
        try:
            samples, _ = load_audio(record.path, sample_rate=sample_rate)
        except AudioError as error:
            on_error(record, str(error))
            continue
        kept.append(position)
        waveforms.append(samples)
    return kept, waveforms


@torch.no_grad()
def predict_batches(
    model: nn.Module,
    records: Sequence[AudioRecord],
    settings: PredictionSettings,
    on_error: ErrorCallback,
    progress: Callable[[int], Any] | None = None,
) -> Iterable[tuple[AudioRecord, dict[str, float]]]:
    """Yield ``(record, {metric: value})`` for every readable record, batch by batch.

    Args:
        model: A :class:`sqa.predictors.UniVersa` (any module with the same interface).
        records: Files to score.
        settings: Batching / device / metric options.
        on_error: Called with ``(record, message)`` for each skipped file.
        progress: Called with the number of files finished after each batch.
    """
    names = list(settings.metrics or model.metric_names)
    unknown = sorted(set(names) - set(model.metric_names))
    if unknown:
        raise SqaError(
            f"the model has no head for {', '.join(unknown)}; "
            f"available: {', '.join(model.metric_names)}"
        )
    model.eval()
    usable, durations = record_durations(records, on_error)
    if progress is not None and len(usable) < len(records):
        progress(len(records) - len(usable))
    for batch in pack_by_duration(durations, settings.batch_seconds, settings.max_batch_size):
        batch_records = [records[usable[index]] for index in batch]
        kept, waveforms = _load_batch(batch_records, model.sample_rate, on_error)
        if waveforms:
            waveform, lengths = collate_waveforms(waveforms)
            output = model(waveform.to(settings.device), lengths.to(settings.device))
            values = {name: output.scores[name].float().cpu().numpy() for name in names}
            for row, position in enumerate(kept):
                scores = {name: float(values[name][row]) for name in names}
                yield batch_records[position], scores
        if progress is not None:
            progress(len(batch))


def prediction_rows(
    model: nn.Module,
    records: Sequence[AudioRecord],
    settings: PredictionSettings,
    on_error: ErrorCallback,
    progress: Callable[[int], Any] | None = None,
) -> list[dict[str, Any]]:
    """Predictions as Track-2 style rows, in the order of ``records``.

    Returns:
        ``[{"sample_id", "system_id", "metrics": {...}}]`` for the readable records.
    """
    found = {
        record.key: scores
        for record, scores in predict_batches(model, records, settings, on_error, progress)
    }
    return [
        {"sample_id": record.sample_id, "system_id": record.system_id, "metrics": found[record.key]}
        for record in records
        if record.key in found
    ]
