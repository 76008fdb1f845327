"""Log-mel front end of the URGENT-PK ranker, written in plain torch (no torchaudio).

Paper configuration: 16 kHz input, ``n_fft`` 320, Hann window of 160 samples centred in the FFT
frame, hop 80, a centred (reflect-padded) STFT, power spectrum, 120 triangular HTK-scale mel filters
spanning 0-8 kHz without area normalisation, then ``10 * log10(max(x, 1e-10))``.

With 161 FFT bins (50 Hz apart) and 120 mel bands the lowest bands are narrower than one bin, so a
few filters contain no FFT bin and always output the floor (-100 dB). This matches the reference
configuration and is kept on purpose; :func:`sqa.mel.empty_mel_filters` reports which bands are
empty.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sqa.mel import htk_mel_filterbank, mel_power_spectrogram


def frames_for_lengths(lengths: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Number of centred STFT frames that cover ``lengths`` samples: ``1 + length // hop``."""
    return torch.div(lengths, hop_length, rounding_mode="floor") + 1


class LogMelSpectrogram(nn.Module):
    """Waveform ``(B, T)`` -> log-mel features ``(B, n_mels, frames)`` in dB.

    Args:
        sample_rate: Input rate in Hz.
        n_fft: FFT size.
        win_length: Hann window length (zero-padded on both sides to ``n_fft``).
        hop_length: Frame shift in samples.
        n_mels: Number of mel bands.
        f_min: Lowest mel edge in Hz.
        f_max: Highest mel edge in Hz (default Nyquist).
        floor: Power floor before the logarithm.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 320,
        win_length: int = 160,
        hop_length: int = 80,
        n_mels: int = 120,
        f_min: float = 0.0,
        f_max: float | None = None,
        floor: float = 1e-10,
    ) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.floor = floor
        window = torch.hann_window(win_length, periodic=True)
        self.register_buffer("window", window, persistent=False)
        filterbank = htk_mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, f_min, f_max)
        self.register_buffer("filterbank", filterbank, persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Compute log-mel features.

        Args:
            waveform: ``(B, T)`` float waveform at ``sample_rate``.

        Returns:
            ``(B, n_mels, 1 + T // hop_length)`` features in dB.
        """
        mel = mel_power_spectrogram(
            waveform,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            filterbank=self.filterbank,
        ).transpose(1, 2)
        return 10.0 * torch.log10(torch.clamp(mel, min=self.floor))


def reference_db_floor(floor: float = 1e-10) -> float:
    """The dB value of an empty band (``10 * log10(floor)``), e.g. -100 dB."""
    return 10.0 * math.log10(floor)
