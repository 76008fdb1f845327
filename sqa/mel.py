"""HTK mel filterbank and mel power frames in torch, shared by the predictor and ranker front ends.

Our own implementation, so no model depends on torchaudio (its wheels do not import beside the CPU
torch build). Filters have peak height 1 and no area normalisation, the convention of
``torchaudio.functional.melscale_fbanks(norm=None, mel_scale="htk")`` that both models' papers use.
The Slaney-scale numpy filterbank that DNSMOS and NISQA need lives in :mod:`sqa.metrics.features`.
"""

from __future__ import annotations

import torch


def hz_to_mel_htk(frequency: torch.Tensor) -> torch.Tensor:
    """HTK mel scale: ``2595 * log10(1 + f / 700)``."""
    return 2595.0 * torch.log10(1.0 + frequency / 700.0)


def mel_to_hz_htk(mel: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel_htk`."""
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def htk_mel_filterbank(
    n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular filters equally spaced on the HTK mel scale.

    Args:
        n_freqs: Number of one-sided FFT bins (``n_fft // 2 + 1``).
        n_mels: Number of mel bands.
        sample_rate: Sampling rate in Hz.
        f_min: Lowest band edge in Hz.
        f_max: Highest band edge in Hz (default: Nyquist).

    Returns:
        Float32 matrix of shape ``(n_freqs, n_mels)`` mapping power spectra to mel bands.
    """
    upper = sample_rate / 2.0 if f_max is None else f_max
    bin_frequencies = torch.linspace(0.0, sample_rate / 2.0, n_freqs, dtype=torch.float64)
    mel_edges = torch.linspace(
        float(hz_to_mel_htk(torch.tensor(f_min, dtype=torch.float64))),
        float(hz_to_mel_htk(torch.tensor(upper, dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    edges_hz = mel_to_hz_htk(mel_edges)
    widths = edges_hz[1:] - edges_hz[:-1]
    # distance of every FFT bin to every band edge: (n_freqs, n_mels + 2)
    offsets = edges_hz.unsqueeze(0) - bin_frequencies.unsqueeze(1)
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0).to(torch.float32)


def empty_mel_filters(filterbank: torch.Tensor) -> list[int]:
    """Indices of mel bands without any FFT bin: all-zero columns of a ``(freqs, mels)`` bank."""
    return [int(index) for index in torch.nonzero(filterbank.sum(dim=0) == 0).flatten()]


def mel_power_spectrogram(
    waveform: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    filterbank: torch.Tensor,
) -> torch.Tensor:
    """Mel power frames of a centred (reflect-padded) Hann STFT: the shared part of the log-mel
    front ends of the ranker (dB) and of the predictor (natural log).

    Args:
        waveform: ``(B, T)`` float waveform.
        n_fft: FFT size.
        hop_length: Frame shift in samples.
        window: ``(win_length,)`` analysis window (zero-padded to ``n_fft`` by ``torch.stft``).
        filterbank: ``(n_fft // 2 + 1, n_mels)`` mel weights (:func:`htk_mel_filterbank`).

    Returns:
        ``(B, 1 + T // hop_length, n_mels)`` mel band powers.

    Example:
        >>> bank = htk_mel_filterbank(257, 40, 16000)
        >>> frames = mel_power_spectrogram(torch.zeros(2, 1600), n_fft=512, hop_length=160,
        ...                                window=torch.hann_window(400), filterbank=bank)
        >>> tuple(frames.shape)
        (2, 11, 40)
    """
    spectrum = torch.stft(
        waveform,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=window.shape[0],
        window=window.to(waveform.dtype),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    power = spectrum.real.square() + spectrum.imag.square()  # (B, bins, frames)
    return torch.matmul(power.transpose(1, 2), filterbank.to(power.dtype))
