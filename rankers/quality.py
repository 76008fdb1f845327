"""URGENT-PK ranker on a pretrained quality model: the frozen Distill-MOS network as encoder.

URGENT-PK found its best comparing model on a pretrained MOS predictor's encoder (UTMOS). UTMOS
weights cannot be had offline here; Distill-MOS (MIT weights inside the ``distillmos`` package) is
the available pretrained quality model. Each utterance is encoded once (late fusion, as
:mod:`rankers.cached`): the 7 Transformer layers of the frozen network give ``(7, F, 200)``
activations, pooled over valid frames into mean and standard deviation per layer ``(7, 400)``
(the *frozen features*, cached during training), mixed by learnable softmax layer weights and
projected by a small MLP into the embedding. Pairs use the antisymmetric pair head of the cached
ranker, so swapping the inputs negates the logit exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rankers.cached import build_pair_head, compare_antisymmetric
from rankers.model import RankerOutput
from rankers.resnet import masked_mean_std
from sqa.checkpoint import register_model
from sqa.export.registry import register_exporter
from sqa.predictors.distillmos_frontend import (
    FEATURE_DIM,
    NUM_LAYERS,
    DistillMosConfig,
    DistillMosFrontEnd,
)

MODEL_KIND = "urgent_pk_distillmos"


@dataclass(frozen=True)
class QualityRankerConfig:
    """Configuration of :class:`QualityEncoderRanker`.

    Attributes:
        sample_rate: Input rate in Hz (Distill-MOS works at 16 kHz).
        layers: Distill-MOS Transformer layers used (0-6).
        hidden: Hidden units of the projection MLP.
        embedding_size: Size of the cached per-utterance embedding.
        head_hidden: Hidden units of the pair head.
        dropout: Dropout in the projection and the pair head.
        pretrained: Load the Distill-MOS weights of the package (off only in shape tests).
    """

    sample_rate: int = 16000
    layers: tuple[int, ...] = tuple(range(NUM_LAYERS))
    hidden: int = 256
    embedding_size: int = 128
    head_hidden: int = 64
    dropout: float = 0.1
    pretrained: bool = True


class QualityEncoderRanker(nn.Module):
    """Late-fusion pairwise model on frozen Distill-MOS layer statistics.

    Args:
        config: The model configuration.
    """

    supports_cache = True

    def __init__(self, config: QualityRankerConfig) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = config.sample_rate
        self.encoder = DistillMosFrontEnd(
            DistillMosConfig(layers=config.layers, freeze=True, pretrained=config.pretrained)
        )
        self.encoder.mix.requires_grad_(False)  # unused: the ranker mixes pooled layer stats
        self.layer_logits = nn.Parameter(torch.zeros(len(config.layers)))
        self.projection = nn.Sequential(
            nn.LayerNorm(2 * FEATURE_DIM),
            nn.Linear(2 * FEATURE_DIM, config.hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.embedding_size),
            nn.LayerNorm(config.embedding_size),
        )
        self.pair_head = build_pair_head(config.embedding_size, config.head_hidden, config.dropout)
        self.mos_head = nn.Linear(config.embedding_size, 1)

    def train(self, mode: bool = True) -> QualityEncoderRanker:
        """Keep the frozen encoder in eval mode (fixed features, no dropout noise)."""
        super().train(mode)
        self.encoder.eval()
        return self

    def frozen_signature(self) -> str:
        """What the frozen features depend on (cached features are reused only if it matches)."""
        return f"distillmos-layers{list(self.config.layers)}-pretrained{self.config.pretrained}"

    @torch.no_grad()
    def frozen_features(
        self, waveform: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-layer mean/std of the frozen network over valid frames.

        Args:
            waveform: ``(B, T)`` zero-padded waveforms at 16 kHz.
            lengths: ``(B,)`` valid samples (default: all).

        Returns:
            ``(B, L, 400)`` statistics (mean in the first 200, standard deviation in the last).
        """
        if lengths is None:
            lengths = torch.full((waveform.shape[0],), waveform.shape[1], device=waveform.device)
        layers, frames = self.encoder.layer_features(waveform, lengths)  # (L, B, F, 200)
        pooled = masked_mean_std(layers.permute(1, 0, 3, 2), frames)  # (B, L, 200, 2)
        return pooled.permute(0, 1, 3, 2).flatten(start_dim=2)

    def embed_frozen(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, L, 400)`` frozen features -> ``(B, embedding_size)`` embeddings."""
        weights = torch.softmax(self.layer_logits, dim=0)
        mixed = (features * weights[None, :, None]).sum(dim=1)
        return self.projection(mixed)

    def embed(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Encode single utterances ``(B, T)`` into ``(B, embedding_size)``."""
        return self.embed_frozen(self.frozen_features(waveform, lengths))

    def compare_embeddings(
        self, embedding_a: torch.Tensor, embedding_b: torch.Tensor
    ) -> RankerOutput:
        """Pair outputs from embeddings ``(B, E)`` each (antisymmetric logit)."""
        return compare_antisymmetric(self.pair_head, self.mos_head, embedding_a, embedding_b)

    def compare_frozen(self, features_a: torch.Tensor, features_b: torch.Tensor) -> RankerOutput:
        """Pair outputs from cached frozen features ``(B, L, 400)`` each (training path)."""
        return self.compare_embeddings(self.embed_frozen(features_a), self.embed_frozen(features_b))

    def forward(
        self,
        wave_a: torch.Tensor,
        wave_b: torch.Tensor,
        lengths_a: torch.Tensor | None = None,
        lengths_b: torch.Tensor | None = None,
    ) -> RankerOutput:
        """Compare a batch of pairs ``(B, T)`` each; see :class:`~rankers.model.RankerOutput`."""
        return self.compare_embeddings(self.embed(wave_a, lengths_a), self.embed(wave_b, lengths_b))


register_model(MODEL_KIND, QualityRankerConfig, QualityEncoderRanker, role="pairwise ranker")
register_exporter(MODEL_KIND, "rankers.export:ranker_graphs")
