"""ONNX export and onnxruntime inference of the late-fusion rankers.

Two graphs per ranker: ``X.onnx`` encodes one utterance (``waveform (B, T)``, ``lengths (B,)`` ->
``embedding (B, E)``) and ``X.pair.onnx`` compares cached embeddings (``embedding_a``,
``embedding_b`` -> ``logit``, ``mos_a``, ``mos_b``), the split :class:`~rankers.inference.
RankerScorer` already uses. :class:`OnnxRanker` runs both with the eager ranker's interface.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rankers.cached import CachedPairwiseRanker
from rankers.features import frames_for_lengths
from rankers.model import RankerOutput
from rankers.quality import QualityEncoderRanker
from rankers.resnet import downsampled_length, masked_mean_std
from sqa.errors import CheckpointError
from sqa.export.onnx import graph_path
from sqa.export.predictor import DistillMosLayers
from sqa.export.registry import ExportGraph
from sqa.export.runtime import OnnxGraph, open_graph
from sqa.export.spectral import RealSTFT

RANKER_KINDS = ("urgent_pk_cached", "urgent_pk_distillmos")


class MelRankerEmbedding(nn.Module):
    """Traceable :meth:`CachedPairwiseRanker.embed` (log-mel in dB through :class:`RealSTFT`)."""

    def __init__(self, model: CachedPairwiseRanker) -> None:
        super().__init__()
        self.model = model
        spectrogram = model.encoder.spectrogram
        self.spectrogram = spectrogram
        self.stft = RealSTFT(spectrogram.n_fft, spectrogram.hop_length, spectrogram.win_length)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, T)``, ``(B,)`` -> ``(B, E)``."""
        mel = self.stft.mel_power(waveform, self.spectrogram.filterbank).transpose(1, 2)
        features = 10.0 * torch.log10(torch.clamp(mel, min=self.spectrogram.floor))
        frames = frames_for_lengths(lengths, self.spectrogram.hop_length)
        hidden = self.model.trunk(features.unsqueeze(1))
        valid = downsampled_length(frames, self.model.config.strides)
        return self.model.projection(masked_mean_std(hidden, valid).flatten(start_dim=1))


class QualityRankerEmbedding(nn.Module):
    """Traceable :meth:`QualityEncoderRanker.embed` (Distill-MOS layers, pooled and mixed)."""

    def __init__(self, model: QualityEncoderRanker) -> None:
        super().__init__()
        self.model = model
        self.layers = DistillMosLayers(model.encoder)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, T)``, ``(B,)`` -> ``(B, E)``."""
        layers, frames = self.layers(waveform, lengths)
        pooled = masked_mean_std(layers.permute(1, 0, 3, 2), frames)
        return self.model.embed_frozen(pooled.permute(0, 1, 3, 2).flatten(start_dim=2))


class PairGraph(nn.Module):
    """Cached embeddings -> ``(logit, mos_a, mos_b)``, each ``(B,)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, embedding_a: torch.Tensor, embedding_b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return tuple(self.model.compare_embeddings(embedding_a, embedding_b))


def ranker_graphs(model: nn.Module) -> list[ExportGraph]:
    """The embedding graph and the pair graph of a late-fusion ranker."""
    if isinstance(model, CachedPairwiseRanker):
        embedding: nn.Module = MelRankerEmbedding(model)
    else:
        embedding = QualityRankerEmbedding(model)
    size = model.config.embedding_size

    def waveforms(samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(2, samples) * 0.1, torch.tensor([samples, samples * 2 // 3])

    def embeddings(samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        count = 1 + samples % 7  # several batch sizes across the verification lengths
        return torch.randn(count, size), torch.randn(count, size)

    return [
        ExportGraph(
            suffix="",
            module=embedding,
            reference=lambda waveform, lengths: model.embed(waveform, lengths),
            input_names=["waveform", "lengths"],
            output_names=["embedding"],
            dynamic_axes={"waveform": {0: "batch", 1: "samples"}, "lengths": {0: "batch"}},
            inputs=waveforms,
        ),
        ExportGraph(
            suffix=".pair",
            module=PairGraph(model),
            reference=lambda first, second: tuple(model.compare_embeddings(first, second)),
            input_names=["embedding_a", "embedding_b"],
            output_names=["logit", "mos_a", "mos_b"],
            dynamic_axes={"embedding_a": {0: "pairs"}, "embedding_b": {0: "pairs"}},
            inputs=embeddings,
        ),
    ]


class OnnxRanker:
    """Late-fusion ranker on its two exported graphs, with the eager ranker's interface."""

    supports_cache = True

    def __init__(self, embedding: OnnxGraph, pair: OnnxGraph) -> None:
        self.embedding_graph = embedding
        self.pair_graph = pair
        self.sample_rate = embedding.sample_rate
        self.config = embedding.config
        self.checkpoint_metadata: dict[str, Any] = embedding.checkpoint_metadata

    def to(self, _device: object) -> OnnxRanker:
        """No-op: onnxruntime runs on the CPU here."""
        return self

    def eval(self) -> OnnxRanker:
        """No-op (mirrors ``nn.Module.eval``)."""
        return self

    def embed(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T)`` -> ``(B, E)`` embeddings."""
        samples = np.ascontiguousarray(waveform.detach().cpu().float().numpy())
        if lengths is None:
            lengths = torch.full((samples.shape[0],), samples.shape[1])
        (embedding,) = self.embedding_graph.run(samples, lengths.cpu().long().numpy())
        return torch.from_numpy(embedding)

    def compare_embeddings(self, first: torch.Tensor, second: torch.Tensor) -> RankerOutput:
        """Pair outputs from embeddings ``(B, E)`` each."""
        logit, mos_a, mos_b = self.pair_graph.run(first.float().numpy(), second.float().numpy())
        return RankerOutput(
            torch.from_numpy(logit), torch.from_numpy(mos_a), torch.from_numpy(mos_b)
        )


def load_onnx_ranker(path: str, purpose: str = "sqa rank --backend onnx") -> OnnxRanker:
    """Open ``X.onnx`` and its ``X.pair.onnx``.

    Raises:
        CheckpointError: Missing pair graph, wrong kind or not an exported ranker.
    """
    embedding = open_graph(path, RANKER_KINDS, purpose)
    pair_path = graph_path(embedding.path, ".pair")
    if not pair_path.is_file():
        raise CheckpointError(f"{pair_path} is missing: a ranker export has two graphs")
    return OnnxRanker(embedding, open_graph(pair_path, RANKER_KINDS, purpose))
