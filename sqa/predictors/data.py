"""Training data of the predictor: labelled records, waveforms, duration-packed batches."""

from __future__ import annotations

import glob
import math
import random
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from sqa.audio import load_audio
from sqa.data.records import AudioRecord
from sqa.errors import AudioError, DataFormatError, SqaError
from sqa.predictors.inference import collate_waveforms, pack_by_duration


def load_sources(patterns: Sequence[str]) -> list[AudioRecord]:
    """Read and concatenate every source matched by the patterns (paths or globs)."""
    from sqa.data import load_records

    records: list[AudioRecord] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise DataFormatError(f"no data source matches {pattern!r}")
        for match in matches:
            records.extend(load_records(match))
    keys = [record.key for record in records]
    if len(set(keys)) != len(keys):
        raise DataFormatError("the training sources repeat a (system_id, sample_id) key")
    return records


def label_matrix(records: Sequence[AudioRecord], names: Sequence[str]) -> torch.Tensor:
    """``(N, K)`` labels with NaN for missing values."""
    rows = [[float(record.metrics.get(name, math.nan)) for name in names] for record in records]
    return torch.tensor(rows, dtype=torch.float64).reshape(len(records), len(names))


class LabelledAudio(torch.utils.data.Dataset):
    """Waveforms (resampled, optionally randomly cropped) with their label vectors.

    A crop's position is drawn from ``(seed, epoch, index)`` alone (set ``epoch`` before each
    pass), so it is the same whatever was read before: after a resume, in any worker process.
    """

    def __init__(
        self,
        records: Sequence[AudioRecord],
        labels: torch.Tensor,
        sample_rate: int,
        max_seconds: float | None,
        seed: int,
    ) -> None:
        self.records = list(records)
        self.labels = labels.to(torch.float32)
        self.sample_rate = sample_rate
        self.max_samples = None if max_seconds is None else int(max_seconds * sample_rate)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[np.ndarray, torch.Tensor] | None:
        try:
            samples, _ = load_audio(self.records[index].path, sample_rate=self.sample_rate)
        except AudioError as error:
            warnings.warn(f"skipping training file: {error}", stacklevel=2)
            return None
        if self.max_samples is not None and len(samples) > self.max_samples:
            generator = np.random.default_rng((self.seed, self.epoch, index))
            start = int(generator.integers(len(samples) - self.max_samples + 1))
            samples = samples[start : start + self.max_samples]
        return samples, self.labels[index]


def collate_labelled(
    items: Sequence[tuple[np.ndarray, torch.Tensor] | None],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Batch ``(waveform, labels)`` items, dropping unreadable ones (``None``)."""
    kept = [item for item in items if item is not None]
    if not kept:
        return None
    waveform, lengths = collate_waveforms([item[0] for item in kept])
    return waveform, lengths, torch.stack([item[1] for item in kept])


class DurationBatches(torch.utils.data.Sampler[list[int]]):
    """Duration-packed batches in a seeded random order per epoch, sharded across ranks.

    Every rank gets the same number of batches (extra batches are dropped), as DDP requires.
    The order is a function of ``(seed, epoch)``; ``skip`` leaves out the first batches of an
    epoch that a resumed run has already trained on (its length stays the whole epoch's).
    """

    def __init__(
        self,
        durations: Sequence[float],
        batch_seconds: float,
        max_batch_size: int | None,
        max_seconds: float | None,
        seed: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        capped = [min(d, max_seconds or d) for d in durations]
        self.batches = pack_by_duration(capped, batch_seconds, max_batch_size)
        if len(self.batches) < world:
            raise SqaError(f"{len(self.batches)} batches cannot be shared by {world} processes")
        self.seed, self.rank, self.world = seed, rank, world
        self.epoch = 0
        self.skip = 0

    def __len__(self) -> int:
        return len(self.batches) // self.world

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(len(self.batches)))
        random.Random(self.seed * 100003 + self.epoch).shuffle(order)
        usable = order[: len(self) * self.world]
        for position in usable[self.rank :: self.world][self.skip :]:
            yield self.batches[position]
