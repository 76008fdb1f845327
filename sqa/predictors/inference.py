"""Batched inference of the predictor over audio records (used by ``sqa predict`` and friends).

Files are grouped into batches by duration (:func:`pack_by_duration`), so little compute goes into
padding; each batch is zero-padded and passed with its lengths, and the model masks the padding.
Files that cannot be read (or fail validation) are reported through a callback and skipped; they
never stop the run and never produce a row.

Long files: the trunk's self-attention costs memory quadratic in the number of frames (a 10-minute
file asked for 57.6 GB), and the predictor was trained on clips of a few seconds. A file longer than
:data:`WINDOW_SECONDS` is therefore cut into ``ceil(duration / WINDOW_SECONDS)`` consecutive windows
of equal length (each at most :data:`WINDOW_SECONDS`, so no short leftover), the windows are
predicted in batches within the ``batch_seconds`` budget, and the file's score per metric is the
mean of its windows' scores weighted by their lengths. Files up to :data:`WINDOW_SECONDS` are
predicted whole, exactly as before.
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
WINDOW_SECONDS = 20.0


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


def split_windows(waveform: np.ndarray, window: int) -> list[np.ndarray]:
    """Cut a signal into ``ceil(T / window)`` consecutive pieces of (nearly) equal length.

    Example:
        >>> [piece.size for piece in split_windows(np.zeros(25), 10)]
        [9, 8, 8]
    """
    count = max(1, math.ceil(waveform.size / window))
    return list(np.array_split(waveform, count))


def _forward(
    model: nn.Module, waveforms: Sequence[np.ndarray], names: Sequence[str], device: str
) -> dict[str, np.ndarray]:
    """Scores ``{metric: (B,)}`` of a list of waveforms, batched with padding."""
    waveform, lengths = collate_waveforms(waveforms)
    output = model(waveform.to(device), lengths.to(device))
    return {name: output.scores[name].detach().float().cpu().numpy() for name in names}


@torch.no_grad()
def predict_long(
    model: nn.Module, waveform: np.ndarray, names: Sequence[str], settings: PredictionSettings
) -> dict[str, float]:
    """Length-weighted mean of the window scores of a file longer than :data:`WINDOW_SECONDS`."""
    pieces = split_windows(waveform, int(WINDOW_SECONDS * model.sample_rate))
    per_batch = max(1, int(settings.batch_seconds // WINDOW_SECONDS))
    if settings.max_batch_size is not None:
        per_batch = min(per_batch, settings.max_batch_size)
    values: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for first in range(0, len(pieces), per_batch):
        scores = _forward(model, pieces[first : first + per_batch], names, settings.device)
        for name in names:
            values[name].append(scores[name])
    weights = np.array([piece.size for piece in pieces], dtype=np.float64)
    return {
        name: float(np.average(np.concatenate(values[name]).astype(np.float64), weights=weights))
        for name in names
    }


def _out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure (torch reports CPU ones as RuntimeError)."""
    if isinstance(error, MemoryError | torch.OutOfMemoryError):
        return True
    message = str(error)
    return isinstance(error, RuntimeError) and (
        "can't allocate memory" in message or "out of memory" in message
    )


def _predict_loaded(
    model: nn.Module,
    records: Sequence[AudioRecord],
    waveforms: Sequence[np.ndarray],
    names: Sequence[str],
    settings: PredictionSettings,
    on_error: ErrorCallback,
) -> Iterable[tuple[AudioRecord, dict[str, float]]]:
    """Predict loaded files: short ones in one padded batch, long ones window by window.

    An allocation failure skips the files concerned (reported through ``on_error``) instead of
    ending the run.
    """
    limit = WINDOW_SECONDS * model.sample_rate
    short = [row for row, waveform in enumerate(waveforms) if waveform.size <= limit]
    groups = [short] if short else []
    groups += [[row] for row, waveform in enumerate(waveforms) if waveform.size > limit]
    for rows in groups:
        try:
            if waveforms[rows[0]].size > limit:
                found = [predict_long(model, waveforms[rows[0]], names, settings)]
            else:
                values = _forward(model, [waveforms[row] for row in rows], names, settings.device)
                found = [
                    {name: float(values[name][index]) for name in names}
                    for index in range(len(rows))
                ]
        except (MemoryError, RuntimeError) as error:
            if not _out_of_memory(error):
                raise
            for row in rows:
                on_error(records[row], "out of memory while predicting: lower --batch-seconds")
            continue
        yield from zip((records[row] for row in rows), found, strict=True)


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
        loaded = [batch_records[position] for position in kept]
        yield from _predict_loaded(model, loaded, waveforms, names, settings, on_error)
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
