"""Batched inference of a pairwise ranker over homologous files: ECS tables and SQA modes.

Work is organised utterance by utterance: the ``K`` homologous files of one utterance are loaded,
cropped to a common length (so no pair needs padding), encoded **once** each, and then every system
pair is compared on the cached encodings in batches under ``torch.inference_mode``. For the
early-fusion model this saves the encoder (log-mel or ssl) work; for the late-fusion
:class:`~rankers.cached.CachedPairwiseRanker` the pair head is all that runs per pair.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sqa.audio import load_audio
from sqa.errors import AudioError


@dataclass
class HomologousAudio:
    """Loads the homologous files of one utterance, cropped to a common length.

    Attributes:
        paths: ``system -> utterance -> path``.
        sample_rate: Rate every file is resampled to.
        unreadable: ``(system, utterance, reason)`` for files that could not be used.
        cropped: ``(utterance, shortest, longest)`` lengths in samples where files differed.
    """

    paths: Mapping[str, Mapping[str, Path]]
    sample_rate: int
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)
    cropped: list[tuple[str, int, int]] = field(default_factory=list)

    def load(self, systems: Sequence[str], utterance: str) -> np.ndarray | None:
        """``(len(systems), T)`` float32 waveforms, or ``None`` if any file is unusable."""
        waves = []
        for system in systems:
            path = self.paths.get(system, {}).get(utterance)
            if path is None:
                self.unreadable.append((system, utterance, "missing"))
                return None
            try:
                samples, _ = load_audio(path, sample_rate=self.sample_rate)
            except AudioError as error:
                self.unreadable.append((system, utterance, str(error)))
                return None
            waves.append(samples)
        lengths = [wave.shape[0] for wave in waves]
        shortest = min(lengths)
        if shortest != max(lengths):
            self.cropped.append((utterance, shortest, max(lengths)))
        return np.stack([wave[:shortest] for wave in waves])

    def warn_cropped(self) -> None:
        """Emit one warning summarising length mismatches between homologous files."""
        if self.cropped:
            worst = max(self.cropped, key=lambda item: item[2] - item[1])
            warnings.warn(
                f"{len(self.cropped)} utterance(s) had homologous files of different lengths; "
                f"cropped to the shortest (largest gap: {worst[0]}, {worst[1]} vs {worst[2]} "
                "samples)",
                stacklevel=2,
            )


def upper_pairs(count: int, symmetric: bool) -> list[tuple[int, int]]:
    """Index pairs ``(k, w)`` with ``k < w``; when ``symmetric`` each is followed by ``(w, k)``.

    Keeping both orders adjacent puts them in the same batch (batches have an even size).
    """
    pairs = []
    for first in range(count):
        for second in range(first + 1, count):
            pairs.append((first, second))
            if symmetric:
                pairs.append((second, first))
    return pairs


class RankerScorer:
    """Runs a pairwise ranker on the files of one utterance at a time.

    Args:
        model: A :class:`~rankers.model.PairwiseRanker` or
            :class:`~rankers.cached.CachedPairwiseRanker` (put in eval mode here).
        device: Torch device.
        batch_size: Pairs per forward pass of the comparing module.
    """

    def __init__(self, model: nn.Module, device: str = "cpu", batch_size: int = 64) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.cached = bool(getattr(model, "supports_cache", False))

    def encode(self, waves: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encode ``(K, T)`` equal-length waveforms once.

        Returns:
            Early fusion: features ``(K, F, T')`` and frames ``(K,)``; late fusion: embeddings
            ``(K, E)`` and ``None``.
        """
        batch = torch.from_numpy(waves).to(self.device)
        lengths = torch.full((batch.shape[0],), batch.shape[1], device=self.device)
        if self.cached:
            return self.model.embed(batch, lengths), None
        features, frames = self.model.encode(batch, lengths)
        return features, frames

    def compare(
        self, encoded: tuple[torch.Tensor, torch.Tensor | None], first: list[int], second: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compare encoded items ``first[j]`` against ``second[j]`` in batches.

        Returns:
            Logits, MOS of the first and MOS of the second input, each ``(len(first),)``.
        """
        features, frames = encoded
        # The late-fusion pair head is a small MLP: one batch for all pairs is cheapest.
        step = max(len(first), 1) if frames is None else max(2, self.batch_size // 2 * 2)
        logits, mos_a, mos_b = [], [], []
        for start in range(0, len(first), step):
            index_a = torch.tensor(first[start : start + step], device=self.device)
            index_b = torch.tensor(second[start : start + step], device=self.device)
            if frames is None:
                output = self.model.compare_embeddings(features[index_a], features[index_b])
            else:
                output = self.model.compare_features(
                    features[index_a], features[index_b], frames[index_a]
                )
            logits.append(output.logit)
            mos_a.append(output.mos_a)
            mos_b.append(output.mos_b)
        return torch.cat(logits), torch.cat(mos_a), torch.cat(mos_b)

    @torch.inference_mode()
    def utterance_table(
        self, waves: np.ndarray, symmetric: bool = False, replication: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Compare all system pairs of one utterance.

        Args:
            waves: ``(K, T)`` homologous waveforms of equal length.
            symmetric: Also run every pair in the reverse input order.
            replication: Also predict each file's MOS by the Replication strategy.

        Returns:
            ``(K, K)`` probabilities ``P(k better than w)`` (NaN where not run) and ``(K,)``
            replication MOS (NaN when ``replication`` is false).
        """
        count = waves.shape[0]
        encoded = self.encode(waves)
        pairs = upper_pairs(count, symmetric)
        first = [pair[0] for pair in pairs]
        second = [pair[1] for pair in pairs]
        table = np.full((count, count), np.nan)
        mos = np.full(count, np.nan)
        if replication:
            first += list(range(count))
            second += list(range(count))
        if first:
            logits, mos_a, mos_b = self.compare(encoded, first, second)
            probabilities = torch.sigmoid(logits).double().cpu().numpy()
            table[first[: len(pairs)], second[: len(pairs)]] = probabilities[: len(pairs)]
            if replication:
                both = (mos_a[len(pairs) :] + mos_b[len(pairs) :]) / 2
                mos = both.double().cpu().numpy()
        return table, mos

    @torch.inference_mode()
    def noisy_speech_mos(self, waves: np.ndarray, noisy: np.ndarray) -> np.ndarray:
        """Noisy-Speech strategy: ``(MOS_a(s, n) + MOS_b(n, s)) / 2`` for each of ``K`` files.

        Args:
            waves: ``(K, T)`` enhanced files of one utterance.
            noisy: ``(T,)`` the unprocessed noisy input of that utterance.

        Returns:
            ``(K,)`` predicted MOS.
        """
        encoded = self.encode(np.concatenate([waves, noisy[None, :]]))
        count = waves.shape[0]
        enhanced = list(range(count))
        noisy_index = [count] * count
        _, mos_first, _ = self.compare(encoded, enhanced, noisy_index)
        _, _, mos_second = self.compare(encoded, noisy_index, enhanced)
        return ((mos_first + mos_second) / 2).double().cpu().numpy()

    @torch.inference_mode()
    def compare_requests(
        self,
        audio: HomologousAudio,
        systems: Sequence[str],
        utterances: Sequence[str],
        requests: Sequence[tuple[int, int, int]],
    ) -> np.ndarray:
        """``P(k better than w)`` on utterance ``i`` for ``(k, w, i)`` requests (adaptive mode)."""
        result = np.full(len(requests), np.nan)
        by_utterance: dict[int, list[int]] = {}
        for position, (_, _, utterance) in enumerate(requests):
            by_utterance.setdefault(utterance, []).append(position)
        for utterance, positions in by_utterance.items():
            waves = audio.load(systems, utterances[utterance])
            if waves is None:
                continue
            encoded = self.encode(waves)
            first = [requests[position][0] for position in positions]
            second = [requests[position][1] for position in positions]
            logits, _, _ = self.compare(encoded, first, second)
            result[positions] = torch.sigmoid(logits).double().cpu().numpy()
        return result
