"""The export-only real-valued STFT / ISTFT match torch.stft / torch.istft."""

from __future__ import annotations

import pytest
import torch

from sqa.export.spectral import RealISTFT, RealSTFT


@pytest.mark.parametrize("samples", [16000, 40001])
def test_real_stft_and_istft_match_torch(samples: int) -> None:
    torch.manual_seed(0)
    n_fft, hop = 320, 160
    waveform = torch.randn(2, samples)
    window = torch.hann_window(n_fft)
    expected = torch.stft(waveform, n_fft, hop, window=window, center=True, return_complex=True)
    real, imaginary = RealSTFT(n_fft, hop)(waveform)
    assert torch.allclose(real, expected.real, atol=1e-4)
    assert torch.allclose(imaginary, expected.imag, atol=1e-4)
    restored = torch.istft(expected, n_fft, hop, window=window, length=samples)
    ours = RealISTFT(n_fft, hop)(expected.real, expected.imag, samples)
    assert ours.shape == restored.shape
    assert (ours - restored).abs().max() < 1e-4
