"""ONNX export and onnxruntime inference of the BSRNN restorer (waveform -> waveform).

The eager model works on a complex spectrum (``torch.stft`` / ``torch.istft``, complex masks),
which ONNX cannot hold. :class:`BSRNNGraph` runs the same layers on separate real and imaginary
parts (:mod:`sqa.export.spectral`), at the model's own sampling rate, with a dynamic length.
:class:`OnnxRestorer` runs the graph where ``sqa enhance`` runs the eager model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from se_finetune.bsrnn import BSRNN, band_plan, stft_sizes
from sqa.export.registry import ExportGraph
from sqa.export.runtime import OnnxGraph, open_graph
from sqa.export.spectral import RealISTFT, RealSTFT


class BSRNNGraph(nn.Module):
    """Traceable :meth:`BSRNN.forward` at ``model.sample_rate`` with real/imaginary pairs."""

    def __init__(self, model: BSRNN) -> None:
        super().__init__()
        self.model = model
        n_fft, hop = stft_sizes(model.sample_rate, model.config.window_ms, model.config.hop_ms)
        self.stft, self.istft = RealSTFT(n_fft, hop), RealISTFT(n_fft, hop)
        self.plan = band_plan(model.band_widths, n_fft // 2 + 1)

    def _split(self, real: torch.Tensor, imaginary: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` pairs -> band features ``(B, N, T, K)`` (as ``BSRNN._split``)."""
        features = []
        for index, (start, used) in enumerate(self.plan):
            band = torch.stack(
                [real[:, start : start + used], imaginary[:, start : start + used]], dim=-1
            )
            band = F.pad(band, (0, 0, 0, 0, 0, self.model.band_widths[index] - used))
            band = band.permute(0, 1, 3, 2).reshape(band.shape[0], -1, band.shape[2])
            norm, projection = self.model.band_norms[index], self.model.band_projections[index]
            features.append(projection(norm(band)))
        return torch.stack(features, dim=-1)

    def _decode(self, features: torch.Tensor, heads: nn.ModuleList) -> list[torch.Tensor]:
        """Band features -> real and imaginary ``(B, F, T)`` of a mask or residual."""
        real, imaginary = [], []
        for index, (_, used) in enumerate(self.plan):
            band = features[..., index]
            values = heads[index](band).reshape(band.shape[0], -1, 2, band.shape[2])[:, :used]
            real.append(values[:, :, 0])
            imaginary.append(values[:, :, 1])
        return [torch.cat(real, dim=1), torch.cat(imaginary, dim=1)]

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` degraded -> ``(B, T)`` restored."""
        scale = self.model.input_scale(waveform)
        real, imaginary = self.stft(waveform / scale)
        features = self._split(real, imaginary)
        for block in self.model.blocks:
            features = block(features)
        mask_real, mask_imaginary = self._decode(features, self.model.mask_heads)
        residual_real, residual_imaginary = self._decode(features, self.model.residual_heads)
        enhanced_real = mask_real * real - mask_imaginary * imaginary + residual_real
        enhanced_imaginary = mask_real * imaginary + mask_imaginary * real + residual_imaginary
        return self.istft(enhanced_real, enhanced_imaginary, waveform.shape[1]) * scale


def restorer_graphs(model: BSRNN) -> list[ExportGraph]:
    """One graph: ``waveform (B, T)`` -> ``restored (B, T)`` at the model's rate."""

    def inputs(samples: int) -> tuple[torch.Tensor]:
        return (torch.randn(2, samples) * 0.1,)

    return [
        ExportGraph(
            suffix="",
            module=BSRNNGraph(model),
            reference=lambda waveform: model(waveform),
            input_names=["waveform"],
            output_names=["restored"],
            dynamic_axes={"waveform": {0: "batch", 1: "samples"}, "restored": {0: "batch"}},
            inputs=inputs,
        )
    ]


class OnnxRestorer:
    """A restorer graph with the call signature :func:`se_finetune.commands.restore` expects.

    It takes no sample rate: files at other rates are resampled to the graph's rate and back.
    """

    def __init__(self, graph: OnnxGraph) -> None:
        self.graph = graph
        self.sample_rate = graph.sample_rate

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` at :attr:`sample_rate` -> ``(B, T)``."""
        (restored,) = self.graph.run(waveform.detach().cpu().float().contiguous().numpy())
        return torch.from_numpy(restored)

    __call__ = forward


def load_onnx_restorer(path: str) -> OnnxRestorer:
    """Open an exported BSRNN graph (kind checked)."""
    return OnnxRestorer(open_graph(path, ("bsrnn",), "sqa enhance --backend onnx"))
