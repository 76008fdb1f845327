"""Band-split RNN (BSRNN) speech restorer, as used by the URGENT challenge baselines.

The waveform is analysed with an STFT whose window is 20 ms and hop 10 ms at every sampling rate
(n_fft 960 / hop 480 at 48 kHz), so one frequency bin is always 50 Hz wide and a band plan
defined in bins at 48 kHz means the same frequencies at any rate. The spectrum is split into
bands (``[5] + [4]*19 + [10]*6 + [40]*7 + [60]`` bins), each band is normalised and projected
to ``N`` channels, ``num_layers`` dual-path blocks model the sequence over time and then over
bands with bidirectional LSTMs (residual), and a per-band decoder predicts a complex mask and a
complex residual: ``enhanced = mask * noisy + residual``. Non-causal.

Lower sampling rates use a prefix of the band plan; a band cut by the Nyquist frequency is
zero-padded to its nominal width, so one model built for 48 kHz restores 8/16/24/32/44.1 kHz
audio. A model built for a lower ``sample_rate`` simply has fewer bands (less parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sqa.errors import SqaError

BAND_WIDTHS_48K: tuple[int, ...] = (5,) + (4,) * 19 + (10,) * 6 + (40,) * 7 + (60,)
RMS_FLOOR = 1e-5  # keeps silent inputs from being amplified without bound by normalisation


@dataclass(frozen=True)
class BSRNNConfig:
    """Hyper-parameters of :class:`BSRNN` (defaults: the URGENT baseline, about 37.8 M params).

    Attributes:
        sample_rate: Highest rate the model handles; bands above its Nyquist are not built.
        num_channels: Feature channels ``N`` per band (196 in the baseline).
        num_layers: Dual-path (time, band) BLSTM blocks (6 in the baseline).
        window_ms: STFT window length in ms (20 ms; the bin width is ``1000 / window_ms`` Hz).
        hop_ms: STFT hop in ms.
        band_widths: Band plan in bins of ``1000 / window_ms`` Hz, from low to high frequency.
        mask_hidden_factor: Hidden width of the mask decoder as a multiple of ``num_channels``.
        normalise_input: Divide the input by its level before processing and undo it after.
        input_normalisation: The level used by ``normalise_input``: ``"rms"`` (root mean square)
            or ``"std"`` (``torch.std``: mean removed, unbiased; ESPnet's ``normalize_variance``).
        causal: Unidirectional LSTM over time (ESPnet's ``causal=True``); default non-causal.
    """

    sample_rate: int = 48000
    num_channels: int = 196
    num_layers: int = 6
    window_ms: float = 20.0
    hop_ms: float = 10.0
    band_widths: tuple[int, ...] = BAND_WIDTHS_48K
    mask_hidden_factor: int = 4
    normalise_input: bool = True
    input_normalisation: str = "rms"
    causal: bool = False


def compact_config(sample_rate: int = 16000) -> BSRNNConfig:
    """A small BSRNN for CPU work (about 0.5 M parameters at 16 kHz)."""
    return BSRNNConfig(sample_rate=sample_rate, num_channels=32, num_layers=2)


def stft_sizes(sample_rate: int, window_ms: float, hop_ms: float) -> tuple[int, int]:
    """``(n_fft, hop)`` in samples for a rate (960 / 480 at 48 kHz with 20 / 10 ms)."""
    return round(sample_rate * window_ms / 1000), round(sample_rate * hop_ms / 1000)


def band_plan(band_widths: tuple[int, ...], num_bins: int) -> list[tuple[int, int]]:
    """The bands covering ``num_bins`` bins: ``(start, used_width)`` pairs.

    Full bands come first; a last band cut by the Nyquist frequency has ``used_width`` smaller
    than its nominal width.

    Raises:
        SqaError: If the band plan covers fewer bins than requested.
    """
    plan: list[tuple[int, int]] = []
    start = 0
    for width in band_widths:
        if start >= num_bins:
            break
        plan.append((start, min(width, num_bins - start)))
        start += width
    if start < num_bins:
        raise SqaError(f"the band plan covers {start} bins, fewer than the {num_bins} needed")
    return plan


class _DualPathBlock(nn.Module):
    """One residual BLSTM over time followed by one residual BLSTM over bands."""

    def __init__(self, channels: int, causal: bool = False) -> None:
        super().__init__()
        self.time_norm = nn.GroupNorm(1, channels)
        self.time_lstm = nn.LSTM(channels, 2 * channels, batch_first=True, bidirectional=not causal)
        self.time_projection = nn.Linear((2 if causal else 4) * channels, channels)
        self.band_norm = nn.GroupNorm(1, channels)
        self.band_lstm = nn.LSTM(channels, 2 * channels, batch_first=True, bidirectional=True)
        self.band_projection = nn.Linear(4 * channels, channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Args: features ``(B, N, T, K)``. Returns: ``(B, N, T, K)``."""
        batch, channels, frames, bands = features.shape
        sequence = self.time_norm(features).permute(0, 3, 2, 1).reshape(-1, frames, channels)
        sequence = self.time_projection(self.time_lstm(sequence)[0])
        features = features + sequence.reshape(batch, bands, frames, channels).permute(0, 3, 2, 1)
        sequence = self.band_norm(features).permute(0, 2, 3, 1).reshape(-1, bands, channels)
        sequence = self.band_projection(self.band_lstm(sequence)[0])
        return features + sequence.reshape(batch, frames, bands, channels).permute(0, 3, 1, 2)


def _band_head(channels: int, hidden: int, width: int) -> nn.Sequential:
    """Per-band MLP giving ``(real, imaginary)`` for ``width`` bins through a GLU."""
    return nn.Sequential(
        nn.GroupNorm(1, channels),
        nn.Conv1d(channels, hidden, 1),
        nn.Tanh(),
        nn.Conv1d(hidden, 4 * width, 1),
        nn.GLU(dim=1),
    )


class BSRNN(nn.Module):
    """Band-split RNN restorer operating on waveforms.

    Args:
        config: Hyper-parameters; see :class:`BSRNNConfig`.
    """

    def __init__(self, config: BSRNNConfig) -> None:
        super().__init__()
        self.config = config
        n_fft, _ = stft_sizes(config.sample_rate, config.window_ms, config.hop_ms)
        self.band_widths = tuple(
            config.band_widths[: len(band_plan(config.band_widths, n_fft // 2 + 1))]
        )
        channels = config.num_channels
        hidden = config.mask_hidden_factor * channels
        self.band_norms = nn.ModuleList(nn.GroupNorm(1, 2 * w) for w in self.band_widths)
        self.band_projections = nn.ModuleList(
            nn.Conv1d(2 * w, channels, 1) for w in self.band_widths
        )
        if config.input_normalisation not in ("rms", "std"):
            raise SqaError(f"unknown input_normalisation {config.input_normalisation!r}: rms|std")
        self.blocks = nn.ModuleList(
            _DualPathBlock(channels, config.causal) for _ in range(config.num_layers)
        )
        self.mask_heads = nn.ModuleList(_band_head(channels, hidden, w) for w in self.band_widths)
        self.residual_heads = nn.ModuleList(
            _band_head(channels, hidden, w) for w in self.band_widths
        )
        self.sample_rate = config.sample_rate

    def _split(self, spectrum: torch.Tensor, plan: list[tuple[int, int]]) -> torch.Tensor:
        """Complex ``(B, F, T)`` -> band features ``(B, N, T, K)``."""
        features = []
        for index, (start, used) in enumerate(plan):
            band = torch.view_as_real(spectrum[:, start : start + used])  # (B, w, T, 2)
            band = F.pad(band, (0, 0, 0, 0, 0, self.band_widths[index] - used))
            band = band.permute(0, 1, 3, 2).reshape(band.shape[0], -1, band.shape[2])
            features.append(self.band_projections[index](self.band_norms[index](band)))
        return torch.stack(features, dim=-1)

    def _decode(
        self, features: torch.Tensor, plan: list[tuple[int, int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Band features ``(B, N, T, K)`` -> complex mask and residual ``(B, F, T)``."""
        masks, residuals = [], []
        for index, (_, used) in enumerate(plan):
            band = features[..., index]
            for heads, outputs in ((self.mask_heads, masks), (self.residual_heads, residuals)):
                values = heads[index](band)  # (B, 2w, T): (w, 2) pairs per frame
                values = values.reshape(band.shape[0], -1, 2, band.shape[2])[:, :used]
                outputs.append(torch.complex(values[:, :, 0], values[:, :, 1]))
        return torch.cat(masks, dim=1), torch.cat(residuals, dim=1)

    def input_scale(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> ``(B, 1)`` level the input is divided by (and the output multiplied by)."""
        if self.config.normalise_input and self.config.input_normalisation == "std":
            return torch.std(waveform, dim=1, keepdim=True).clamp_min(RMS_FLOOR)
        if self.config.normalise_input:
            return waveform.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(RMS_FLOOR)
        return torch.ones_like(waveform[:, :1])

    def forward(self, waveform: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """Restore a batch of waveforms.

        Args:
            waveform: Degraded speech ``(B, T)``.
            sample_rate: Its rate in Hz (default: the model's ``sample_rate``); at most the
                model's rate.

        Returns:
            Restored speech ``(B, T)``.

        Raises:
            SqaError: For a rate above the model's or input that is not 2-D.
        """
        rate = self.sample_rate if sample_rate is None else int(sample_rate)
        if rate > self.sample_rate:
            raise SqaError(f"this BSRNN handles at most {self.sample_rate} Hz, got {rate} Hz")
        if waveform.dim() != 2:
            raise SqaError(f"BSRNN expects (batch, samples), got shape {tuple(waveform.shape)}")
        n_fft, hop = stft_sizes(rate, self.config.window_ms, self.config.hop_ms)
        scale = self.input_scale(waveform)
        window = torch.hann_window(n_fft, device=waveform.device, dtype=waveform.dtype)
        spectrum = torch.stft(
            waveform / scale, n_fft, hop, window=window, center=True, return_complex=True
        )
        plan = band_plan(self.band_widths, spectrum.shape[1])
        features = self._split(spectrum, plan)
        for block in self.blocks:
            features = block(features)
        mask, residual = self._decode(features, plan)
        enhanced = mask * spectrum + residual
        output = torch.istft(enhanced, n_fft, hop, window=window, length=waveform.shape[1])
        return output * scale


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


# Kinds that ``sqa enhance --model``, ``init_checkpoint`` and processed systems can run.
RESTORER_KINDS = ("bsrnn",)


def _register() -> None:
    from sqa.checkpoint import register_model
    from sqa.checkpoint.importing import register_importer
    from sqa.export.registry import register_exporter

    register_model("bsrnn", BSRNNConfig, BSRNN, role="restorer")
    register_exporter("bsrnn", "se_finetune.export:restorer_graphs")
    register_importer(
        "espnet-bsrnn",
        "se_finetune.espnet_import:import_espnet_bsrnn",
        "ESPnet enh BSRNN model.pth + config.yaml (STFT encoder/decoder)",
    )


_register()
