"""Front ends of the multi-metric predictor: waveform ``(B, T)`` -> frame features ``(B, F, D)``.

Every front end takes a 16 kHz batch with per-item lengths and returns frame features plus the
number of valid frames per item, so the trunk can build key-padding masks. All of them are
differentiable with respect to the input waveform, also when their own weights are frozen: a frozen
front end has ``requires_grad=False`` parameters and stays in eval mode, but is never run under
``torch.no_grad`` when the caller needs input gradients (SQA-guided fine-tuning).

* :class:`SslFrontEnd`: a speech SSL model (WavLM / HuBERT / wav2vec 2.0) loaded with
  ``transformers`` from a local folder; all hidden states are mixed by learnable softmax layer
  weights (initialised equal). The architecture is kept as JSON in the config so that a checkpoint
  rebuilds the network without the original folder (its weights travel in the state dict).
* :class:`LogMelFrontEnd`: log-mel spectrogram with our own triangular (HTK mel scale) filterbank.
* :class:`sqa.predictors.distillmos_frontend.DistillMosFrontEnd`: the Distill-MOS network as a
  frozen multi-layer feature extractor (see that module).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sqa.compat.optional import import_transformers
from sqa.errors import MissingWeightsError
from sqa.mel import htk_mel_filterbank, mel_power_spectrogram


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """Boolean validity mask from lengths.

    Args:
        lengths: ``(B,)`` integer lengths.
        max_length: Size of the time axis.

    Returns:
        ``(B, max_length)`` bool, True where a position is inside its item.
    """
    positions = torch.arange(max_length, device=lengths.device)
    return positions[None, :] < lengths[:, None]


class MixLayers(nn.Module):
    """Weighted sum of stacked layer outputs with softmax-normalised learnable weights.

    The logits start at zero, so every layer starts with the same weight ``1 / L``.
    """

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_layers))

    def forward(self, layers: torch.Tensor) -> torch.Tensor:
        """Mix layers.

        Args:
            layers: ``(L, B, F, D)`` stacked layer outputs.

        Returns:
            ``(B, F, D)``.
        """
        weights = torch.softmax(self.logits, dim=0).to(layers.dtype)
        return torch.einsum("l,lbfd->bfd", weights, layers)


class FrozenAwareModule(nn.Module):
    """A front end whose backbone, when frozen, never leaves eval mode (no dropout, fixed norms)."""

    frozen: bool = True

    def backbone(self) -> nn.Module:
        """The wrapped pretrained network (overridden by subclasses)."""
        raise NotImplementedError

    def train(self, mode: bool = True) -> FrozenAwareModule:
        super().train(mode)
        if self.frozen:
            self.backbone().eval()
        return self

    def freeze_backbone(self) -> None:
        """Stop gradient updates of the backbone weights (input gradients still flow)."""
        for parameter in self.backbone().parameters():
            parameter.requires_grad_(False)
        self.backbone().eval()


@dataclass(frozen=True)
class SslFrontEndConfig:
    """Speech SSL front end.

    Attributes:
        path: Local folder of a ``transformers`` model (``config.json`` + weights). Only read when
            ``architecture`` is empty; nothing is ever downloaded.
        architecture: JSON of the model's ``transformers`` config, filled in when the model is
            first built so that checkpoints rebuild it without ``path``.
        freeze: Keep the SSL weights fixed (the paper's setting).
        normalize_waveform: Zero-mean unit-variance per item before the SSL model (for models
            whose feature extractor has ``do_normalize=True``, e.g. WavLM-Large).
    """

    path: str = ""
    architecture: str = ""
    freeze: bool = True
    normalize_waveform: bool = False


def _load_ssl_model(config: SslFrontEndConfig) -> nn.Module:
    """Build the SSL network from the stored architecture or load it from the local folder."""
    transformers = import_transformers("the SSL front end")
    if config.architecture:
        settings = json.loads(config.architecture)
        model_config = transformers.AutoConfig.for_model(**settings)
        return transformers.AutoModel.from_config(model_config)
    if not config.path:
        raise MissingWeightsError("the SSL front end needs a local model folder (ssl.path)")
    try:
        return transformers.AutoModel.from_pretrained(config.path, local_files_only=True)
    except (OSError, ValueError) as error:
        raise MissingWeightsError(f"cannot load an SSL model from {config.path}: {error}") from None


def masked_normalize(waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero-mean, unit-variance per item over its valid samples (padding stays zero).

    Args:
        waveform: ``(B, T)``.
        lengths: ``(B,)`` valid samples per item.

    Returns:
        ``(B, T)`` normalised waveform.
    """
    mask = lengths_to_mask(lengths, waveform.shape[1]).to(waveform.dtype)
    count = mask.sum(dim=1, keepdim=True).clamp_min(1.0)
    mean = (waveform * mask).sum(dim=1, keepdim=True) / count
    variance = (((waveform - mean) * mask) ** 2).sum(dim=1, keepdim=True) / count
    return (waveform - mean) / torch.sqrt(variance + 1e-7) * mask


class SslFrontEnd(FrozenAwareModule):
    """Hidden states of a ``transformers`` speech SSL model mixed by softmax layer weights."""

    def __init__(self, config: SslFrontEndConfig) -> None:
        super().__init__()
        self.model = _load_ssl_model(config)
        self.config = SslFrontEndConfig(
            path=config.path,
            architecture=config.architecture or self.model.config.to_json_string(),
            freeze=config.freeze,
            normalize_waveform=config.normalize_waveform,
        )
        self.frozen = config.freeze
        self.output_dim = int(self.model.config.hidden_size)
        self.mix = MixLayers(int(self.model.config.num_hidden_layers) + 1)
        if self.frozen:
            self.freeze_backbone()

    def backbone(self) -> nn.Module:
        return self.model

    def forward(
        self, waveform: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Extract mixed SSL features.

        Args:
            waveform: ``(B, T)`` at 16 kHz.
            lengths: ``(B,)`` valid samples per item.

        Returns:
            ``(B, F, D)`` features and ``(B,)`` valid frame counts.
        """
        if self.config.normalize_waveform:
            waveform = masked_normalize(waveform, lengths)
        attention_mask = lengths_to_mask(lengths, waveform.shape[1]).long()
        # Skip the autograd graph of a frozen backbone unless the input itself needs gradients.
        needs_graph = waveform.requires_grad or not self.frozen
        with torch.set_grad_enabled(needs_graph and torch.is_grad_enabled()):
            outputs = self.model(waveform, attention_mask=attention_mask, output_hidden_states=True)
            layers = torch.stack(outputs.hidden_states, dim=0)
        frame_lengths = self.model._get_feat_extract_output_lengths(lengths).long()
        frame_lengths = frame_lengths.clamp(min=1, max=layers.shape[2])
        return self.mix(layers), frame_lengths


@dataclass(frozen=True)
class LogMelConfig:
    """Log-mel spectrogram front end (16 kHz defaults: 25 ms window, 10 ms hop, 80 bands)."""

    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = None
    log_floor: float = 1e-5


class LogMelFrontEnd(nn.Module):
    """``log(mel power + floor)`` frames from a centred STFT with a Hann window."""

    def __init__(self, config: LogMelConfig, sample_rate: int = 16000) -> None:
        super().__init__()
        self.config = config
        self.output_dim = config.n_mels
        filterbank = htk_mel_filterbank(
            config.n_fft // 2 + 1, config.n_mels, sample_rate, config.f_min, config.f_max
        )
        self.register_buffer("filterbank", filterbank, persistent=False)
        self.register_buffer("window", torch.hann_window(config.win_length), persistent=False)

    def forward(
        self, waveform: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute log-mel frames.

        Args:
            waveform: ``(B, T)``.
            lengths: ``(B,)`` valid samples per item.

        Returns:
            ``(B, F, n_mels)`` features and ``(B,)`` valid frame counts.
        """
        config = self.config
        if waveform.shape[1] < config.n_fft // 2 + 1:
            # Reflect padding in the centred STFT needs more samples than half the FFT.
            waveform = F.pad(waveform, (0, config.n_fft // 2 + 1 - waveform.shape[1]))
        mel = mel_power_spectrogram(
            waveform,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            window=self.window,
            filterbank=self.filterbank,
        )  # (B, F, n_mels)
        features = torch.log(mel + config.log_floor)
        return features, self.frame_counts(lengths).long().clamp(max=features.shape[1])

    def frame_counts(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid frames of ``(B,)`` sample counts.

        Only frames whose window ends inside the item count as valid, so an item's features do
        not depend on the zero padding a longer batch-mate adds after it.
        """
        inside = (lengths - self.config.n_fft // 2).clamp_min(0)
        return torch.div(inside, self.config.hop_length, rounding_mode="floor") + 1
