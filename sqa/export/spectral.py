"""Real-valued STFT / ISTFT for export: ``torch.stft`` / ``torch.istft`` as convolutions.

Both match ``torch.stft(..., center=True, pad_mode="reflect", return_complex=True)`` and
``torch.istft(..., center=True, length=...)`` with a periodic Hann window, but keep real and
imaginary parts as separate ``(B, F, T)`` tensors so that the ONNX graph has no complex types.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _dft_basis(n_fft: int, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine bases ``(F, n_fft)`` (float64) with ``F = n_fft // 2 + 1``."""
    bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64).unsqueeze(1)
    samples = torch.arange(n_fft, dtype=torch.float64).unsqueeze(0)
    angle = 2 * math.pi * bins * samples / n_fft
    return torch.cos(angle) * window, torch.sin(angle) * window


class _Transform(nn.Module):
    """What both directions share: the sizes, the periodic Hann window and its DFT bases.

    Args:
        n_fft: FFT size.
        hop: Hop in samples.
        window_length: Hann window length, centred in the FFT frame as ``torch.stft`` does
            (default ``n_fft``).
    """

    def __init__(self, n_fft: int, hop: int, window_length: int | None = None) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        length = n_fft if window_length is None else window_length
        left = (n_fft - length) // 2
        window = torch.zeros(n_fft, dtype=torch.float64)  # float64 until registered
        window[left : left + length] = torch.hann_window(length, dtype=torch.float64)
        self.window = window
        self.cosine, self.sine = _dft_basis(n_fft, self.window)


class RealSTFT(_Transform):
    """Forward STFT as one strided ``conv1d`` with a windowed DFT basis.

    ``padding`` samples of reflect padding on each side: ``n_fft // 2`` (default) is
    ``center=True``; Distill-MOS pads 80 samples by hand and calls ``center=False``.
    """

    def __init__(
        self, n_fft: int, hop: int, window_length: int | None = None, padding: int | None = None
    ) -> None:
        super().__init__(n_fft, hop, window_length)
        self.padding = n_fft // 2 if padding is None else padding
        cosine, sine = self.cosine, self.sine
        kernel = torch.cat([cosine, -sine]).unsqueeze(1).float()
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T)`` -> real and imaginary parts ``(B, F, 1 + T // hop)`` each."""
        padded = F.pad(waveform.unsqueeze(1), (self.padding, self.padding), mode="reflect")
        spectrum = F.conv1d(padded, self.kernel, stride=self.hop)
        return spectrum.chunk(2, dim=1)

    def mel_power(self, waveform: torch.Tensor, filterbank: torch.Tensor) -> torch.Tensor:
        """:func:`sqa.mel.mel_power_spectrogram` in real arithmetic.

        Args:
            waveform: ``(B, T)``.
            filterbank: ``(F, n_mels)``.

        Returns:
            ``(B, frames, n_mels)`` mel band powers.
        """
        real, imaginary = self(waveform)
        power = real.square() + imaginary.square()
        return torch.matmul(power.transpose(1, 2), filterbank.to(power.dtype))


class RealISTFT(_Transform):
    """Inverse STFT as ``conv_transpose1d`` (overlap-add) divided by the window envelope."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__(n_fft, hop)
        window, cosine, sine = self.window, self.cosine, self.sine
        weights = torch.full((n_fft // 2 + 1, 1), 2.0, dtype=torch.float64)
        weights[0] = 1.0
        if n_fft % 2 == 0:
            weights[-1] = 1.0
        kernel = torch.cat([cosine * weights, -sine * weights]) / n_fft
        self.register_buffer("kernel", kernel.unsqueeze(1).float(), persistent=False)
        self.register_buffer(
            "envelope_kernel", (window**2).view(1, 1, -1).float(), persistent=False
        )

    def forward(
        self, real: torch.Tensor, imaginary: torch.Tensor, length: torch.Tensor
    ) -> torch.Tensor:
        """Real and imaginary ``(B, F, T)`` -> waveform ``(B, length)``."""
        frames = F.conv_transpose1d(
            torch.cat([real, imaginary], dim=1), self.kernel, stride=self.hop
        )
        ones = torch.ones_like(real[:1, :1])
        envelope = F.conv_transpose1d(ones, self.envelope_kernel, stride=self.hop)
        start = self.n_fft // 2
        output = frames[:, 0, start:] / envelope[:, 0, start:]
        return output[:, :length]
