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

import torch
from torch import nn
from tqdm import tqdm

from rankers.data import PairExample
from sqa.audio import load_audio


def supports_frozen_cache(model: nn.Module) -> bool:
    """Whether ``model`` can be trained on cached frozen features."""
    return hasattr(model, "frozen_features") and hasattr(model, "compare_frozen")


@torch.no_grad()
def encode_files(
    model: nn.Module, paths: Sequence[str], sample_rate: int, device: str
) -> dict[str, torch.Tensor]:
    """Frozen features of every distinct path, one file at a time (CPU tensors)."""
    model.eval()
    features: dict[str, torch.Tensor] = {}
    for path in tqdm(sorted(set(paths)), desc="frozen features", file=sys.stderr, disable=None):
        samples = load_audio(path, sample_rate=sample_rate)[0]
        waveform = torch.from_numpy(samples).to(device)[None]
        features[path] = model.frozen_features(waveform)[0].cpu()
    return features


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
