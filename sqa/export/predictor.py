"""Export graphs of the multi-metric predictor: waveform ``(B, T)`` + lengths -> scores ``(B, M)``.

The eager front ends call ``torch.stft`` with complex outputs and read a frame count back with
``.item()``; neither traces into ONNX. The modules here compute the same values from the same
weights in traceable form (:class:`~sqa.export.spectral.RealSTFT`, symbolic window counts) and
leave the trunk, heads and range activations to the eager model itself. Frames past the longest
item are kept (the eager model drops them); they are masked out of attention and pooling, so the
scores do not change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sqa.errors import SqaError
from sqa.export.registry import ExportGraph
from sqa.export.spectral import RealSTFT
from sqa.predictors.distillmos_frontend import (
    FEATURE_DIM,
    WINDOW_SAMPLES,
    DistillMosFrontEnd,
    frame_counts,
)
from sqa.predictors.frontends import LogMelFrontEnd, lengths_to_mask

DISTILLMOS_HOP = 160
DISTILLMOS_WINDOW = 320


class DistillMosLayers(nn.Module):
    """Traceable :meth:`DistillMosFrontEnd.layer_features` (same windows, same layers).

    Args:
        front_end: The eager front end whose network and layer choice are used.
    """

    def __init__(self, front_end: DistillMosFrontEnd) -> None:
        super().__init__()
        self.front_end = front_end
        self.stft = RealSTFT(DISTILLMOS_WINDOW, DISTILLMOS_HOP, padding=DISTILLMOS_HOP // 2)

    def forward(
        self, waveform: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T)``, ``(B,)`` -> ``(L, B, F, 200)`` layer outputs and ``(B,)`` frame counts."""
        total = waveform.shape[1]
        count = (total + WINDOW_SAMPLES - 1) // WINDOW_SAMPLES
        padded = F.pad(waveform, (0, count * WINDOW_SAMPLES - total))
        windows = padded.reshape(-1, WINDOW_SAMPLES)
        layers = self.front_end._window_features(windows, self.compressed_spectrogram)
        layers = layers.reshape(layers.shape[0], waveform.shape[0], -1, FEATURE_DIM)
        return layers, frame_counts(lengths).clamp(min=1)

    def compressed_spectrogram(self, windows: torch.Tensor) -> torch.Tensor:
        """:func:`~sqa.predictors.distillmos_frontend.compressed_spectrogram` in real arithmetic."""
        real, imaginary = self.stft(windows)
        magnitude = torch.sqrt(real.square() + imaginary.square() + 1e-12)
        gain = magnitude**0.3 / magnitude
        return torch.stack([real * gain, imaginary * gain], dim=1)


class LogMelFeatures(nn.Module):
    """Traceable :class:`LogMelFrontEnd` (inputs of at least ``n_fft // 2 + 1`` samples)."""

    def __init__(self, front_end: LogMelFrontEnd) -> None:
        super().__init__()
        config = front_end.config
        self.front_end = front_end
        self.stft = RealSTFT(config.n_fft, config.hop_length, config.win_length)

    def forward(
        self, waveform: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T)``, ``(B,)`` -> ``(B, F, n_mels)`` features and ``(B,)`` frame counts."""
        mel = self.stft.mel_power(waveform, self.front_end.filterbank)
        features = torch.log(mel + self.front_end.config.log_floor)
        return features, self.front_end.frame_counts(lengths)


class PredictorGraph(nn.Module):
    """Waveform and lengths -> ``(B, M)`` scores in ``model.metric_names`` order."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        front_end = model.front_end
        if isinstance(front_end, DistillMosFrontEnd):
            self.layers: nn.Module | None = DistillMosLayers(front_end)
            self.features: nn.Module | None = None
        elif isinstance(front_end, LogMelFrontEnd):
            self.layers, self.features = None, LogMelFeatures(front_end)
        else:
            raise SqaError(
                f"ONNX export supports predictors with the distillmos or mel front end, not "
                f"{model.config.front_end!r}"
            )

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` float, ``(B,)`` int64 -> ``(B, M)`` scores."""
        if self.layers is not None:
            layers, frame_lengths = self.layers(waveform, lengths)
            features = self.model.front_end.mix(layers)
        else:
            assert self.features is not None
            features, frame_lengths = self.features(waveform, lengths)
        valid = lengths_to_mask(frame_lengths, features.shape[1])
        scores: dict[str, torch.Tensor] = {}
        for group, members in self.model.group_members.items():
            logits = self.model.heads[group](self.model.encoders[group](features, valid))
            for column, name in enumerate(members):
                scores[name] = self.model._activate(name, logits[:, column])
        return torch.stack([scores[name] for name in self.model.metric_names], dim=1)


def eager_scores(model: nn.Module, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The eager model's ``(B, M)`` scores, the reference the graph is verified against."""
    scores = model(waveform, lengths).scores
    return torch.stack([scores[name] for name in model.metric_names], dim=1)


def predictor_graphs(model: nn.Module) -> list[ExportGraph]:
    """One graph: ``waveform (B, T)``, ``lengths (B,)`` -> ``scores (B, M)``."""
    minimum = model.front_end.config.n_fft // 2 + 1 if model.config.front_end == "mel" else 1

    def inputs(samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        samples = max(samples, minimum)
        lengths = torch.tensor([samples, max(minimum, samples * 2 // 3)])
        return torch.randn(2, samples) * 0.1, lengths

    return [
        ExportGraph(
            suffix="",
            module=PredictorGraph(model),
            reference=lambda waveform, lengths: eager_scores(model, waveform, lengths),
            input_names=["waveform", "lengths"],
            output_names=["scores"],
            dynamic_axes={
                "waveform": {0: "batch", 1: "samples"},
                "lengths": {0: "batch"},
                "scores": {0: "batch"},
            },
            inputs=inputs,
            metadata={"metrics": ",".join(model.metric_names), "minimum_samples": str(minimum)},
        )
    ]
