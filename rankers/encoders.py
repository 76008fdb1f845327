"""Speech encoders of the ranker: log-mel (paper) and a self-supervised model from transformers.

Every encoder maps a padded waveform batch ``(B, T)`` with ``lengths (B,)`` to features
``(B, F, T')`` plus valid frame counts ``(B,)``, where ``F`` is the feature axis treated as
"frequency" by the ResNet comparing module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rankers.features import LogMelSpectrogram, frames_for_lengths
from sqa.errors import CheckpointError, MissingDependencyError


class MelEncoder(nn.Module):
    """Log-mel features ``(B, n_mels, 1 + T // hop)`` (see :mod:`rankers.features`)."""

    def __init__(
        self, sample_rate: int, n_fft: int, win_length: int, hop_length: int, n_mels: int
    ) -> None:
        super().__init__()
        self.hop_length = hop_length
        self.feature_size = n_mels
        self.spectrogram = LogMelSpectrogram(sample_rate, n_fft, win_length, hop_length, n_mels)

    def forward(
        self, waveform: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T)``, ``(B,)`` -> features ``(B, n_mels, T')`` and frame counts ``(B,)``."""
        return self.spectrogram(waveform), frames_for_lengths(lengths, self.hop_length)


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise MissingDependencyError(
            "the ssl encoder needs transformers: pip install 'sqa-suite[ssl]'"
        ) from error
    return transformers


def ssl_config_from_directory(path: str) -> str:
    """Read a transformers model directory's ``config.json`` as a JSON string for our config."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path} is not a transformers model directory (no config.json)")
    return config_file.read_text(encoding="utf-8")


def build_ssl_backbone(path: str | None, config_json: str) -> nn.Module:
    """Load pretrained weights from ``path`` when it exists, else build the stored architecture.

    Checkpoints of the ranker store the backbone architecture (``config_json``) and its weights,
    so loading a trained ranker never needs the original model directory.
    """
    transformers = _transformers()
    if path and Path(path).is_dir():
        return transformers.AutoModel.from_pretrained(path)
    if not config_json:
        raise CheckpointError(f"ssl model directory {path!r} not found and no stored architecture")
    settings = json.loads(config_json)
    model_type = settings.pop("model_type")
    model_config = transformers.AutoConfig.for_model(model_type, **settings)
    return transformers.AutoModel.from_config(model_config)


class SslEncoder(nn.Module):
    """Hidden states of a transformers speech model, optionally followed by a BiLSTM (as UTMOS).

    Args:
        path: Local directory of a transformers model (``from_pretrained``).
        config_json: The model's config as JSON (used when ``path`` is absent).
        layer: Hidden-state index to use (``-1``: last layer).
        freeze: Keep the backbone fixed (no gradients, eval mode).
        lstm_hidden: BiLSTM units per direction; 0 disables the BiLSTM.
    """

    def __init__(
        self, path: str | None, config_json: str, layer: int, freeze: bool, lstm_hidden: int
    ) -> None:
        super().__init__()
        self.backbone = build_ssl_backbone(path, config_json)
        self.layer = layer
        self.freeze = freeze
        if freeze:
            self.backbone.requires_grad_(False)
        hidden_size = int(self.backbone.config.hidden_size)
        self.lstm: nn.LSTM | None = None
        self.feature_size = hidden_size
        if lstm_hidden > 0:
            self.lstm = nn.LSTM(hidden_size, lstm_hidden, batch_first=True, bidirectional=True)
            self.feature_size = 2 * lstm_hidden

    def train(self, mode: bool = True) -> SslEncoder:
        """Keep a frozen backbone in eval mode (no dropout noise in fixed features)."""
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        return self

    def forward(
        self, waveform: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T)``, ``(B,)`` -> features ``(B, D, T')`` and frame counts ``(B,)``."""
        mask = torch.arange(waveform.shape[1], device=waveform.device) < lengths.unsqueeze(1)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            output = self.backbone(
                waveform, attention_mask=mask.long(), output_hidden_states=True, return_dict=True
            )
        hidden = output.hidden_states[self.layer]
        frames = self.backbone._get_feat_extract_output_lengths(lengths).clamp(
            min=1, max=hidden.shape[1]
        )
        if self.lstm is not None:
            packed = nn.utils.rnn.pack_padded_sequence(
                hidden, frames.cpu(), batch_first=True, enforce_sorted=False
            )
            hidden, _ = nn.utils.rnn.pad_packed_sequence(
                self.lstm(packed)[0], batch_first=True, total_length=hidden.shape[1]
            )
        return hidden.transpose(1, 2), frames.to(torch.long)
