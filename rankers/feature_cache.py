"""Training on cached frozen features: encode every file once, then train the small head.

A ranker whose encoder is frozen (e.g. :class:`rankers.quality.QualityEncoderRanker`) computes
the same encoder output for a file in every epoch. Models exposing
``frozen_features(waveform, lengths) -> (B, ...)`` and ``compare_frozen(a, b)`` are trained on
those features computed once per distinct file, whole-file (no random crops): one encoder pass
per file instead of one per pair and epoch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from rankers.data import PairExample
from sqa.audio import load_audio
from sqa.fileio import atomic_open


def supports_frozen_cache(model: nn.Module) -> bool:
    """Whether ``model`` can be trained on cached frozen features."""
    return hasattr(model, "frozen_features") and hasattr(model, "compare_frozen")


@torch.no_grad()
def encode_files(
    model: nn.Module,
    paths: Sequence[str],
    sample_rate: int,
    device: str,
    store: str | Path | None = None,
) -> dict[str, torch.Tensor]:
    """Frozen features of every distinct path, one file at a time (CPU tensors).

    Args:
        model: A model with ``frozen_features`` (see :func:`supports_frozen_cache`).
        paths: Audio files (repeats are encoded once).
        sample_rate: Rate the audio is resampled to.
        device: Torch device of the encoder.
        store: Optional file that keeps the features between runs (another training run on the
            same files skips the encoder). Its entries are valid only for the same frozen
            encoder: it records the model's ``frozen_signature`` and is ignored when that differs.
    """
    model.eval()
    signature = str(getattr(model, "frozen_signature", lambda: "")())
    kept = _read_store(store, signature)
    keys = {path: _file_key(path) for path in set(paths)}
    todo = sorted(path for path, key in keys.items() if key not in kept)
    for path in tqdm(todo, desc="frozen features", file=sys.stderr, disable=None):
        samples = load_audio(path, sample_rate=sample_rate)[0]
        waveform = torch.from_numpy(samples).to(device)[None]
        kept[keys[path]] = model.frozen_features(waveform)[0].cpu()
    if store is not None and todo:
        with atomic_open(store, "wb", encoding=None) as stream:
            torch.save({"signature": signature, "features": kept}, stream)
    return {path: kept[key] for path, key in keys.items()}


def _file_key(path: str) -> str:
    """Path plus size and modification time: a rewritten file is encoded again."""
    status = Path(path).stat()
    return f"{Path(path).resolve()}|{status.st_size}|{status.st_mtime_ns}"


def _read_store(store: str | Path | None, signature: str) -> dict[str, torch.Tensor]:
    """Features kept by an earlier run with the same encoder signature (else none)."""
    if store is None or not Path(store).is_file():
        return {}
    payload = torch.load(store, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("signature") != signature:
        return {}
    return dict(payload.get("features", {}))


class FeaturePairDataset(torch.utils.data.Dataset):
    """Pairs of cached frozen features with their labels.

    Args:
        pairs: The pair list.
        features: ``path -> features`` from :func:`encode_files`.
    """

    def __init__(self, pairs: Sequence[PairExample], features: dict[str, torch.Tensor]) -> None:
        self.pairs = list(pairs)
        self.features = features
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        pair = self.pairs[index]
        return {
            "features_a": self.features[pair.path_a],
            "features_b": self.features[pair.path_b],
            "mos": torch.tensor([pair.mos_a, pair.mos_b], dtype=torch.float32),
            "label": torch.tensor(pair.label, dtype=torch.float32),
        }


def collate_feature_pairs(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack equally shaped feature items into a batch."""
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}
