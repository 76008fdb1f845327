"""Differentiable band-limited resampling in torch (the counterpart of :func:`sqa.audio.resample`).

Kept apart from :mod:`sqa.audio` so that listing and reading audio (every ``sqa`` command's start,
``--help`` included) never imports torch.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from sqa.errors import SqaError


@functools.lru_cache(maxsize=32)
def _sinc_kernel(
    orig: int, target: int, window: str, zero_crossings: int, rolloff: float
) -> tuple[torch.Tensor, int]:
    """Polyphase windowed-sinc kernel for a gcd-reduced ratio ``orig -> target``.

    Returns:
        ``(kernel, width)``: float64 kernel ``(target, 1, 2 * width + orig + 1)`` whose row ``j``
        interpolates output phase ``j`` (time ``j * orig / target`` in input samples) from the
        ``orig`` input samples of one block plus ``width`` samples of context on each side.
    """
    cutoff = min(1.0, target / orig) * rolloff  # fraction of the input Nyquist kept
    width = math.ceil(zero_crossings / cutoff)
    taps = torch.arange(-width, width + orig + 1, dtype=torch.float64)
    phases = torch.arange(target, dtype=torch.float64) * orig / target
    offsets = taps[None, :] - phases[:, None]  # (target, taps) distance in input samples
    relative = (offsets / width).clamp(-1.0, 1.0)
    if window == "kaiser":
        beta = 12.0
        shape = torch.special.i0(beta * torch.sqrt(1.0 - relative**2)) / torch.special.i0(
            torch.tensor(beta, dtype=torch.float64)
        )
    elif window == "hann":
        shape = torch.cos(relative * math.pi / 2) ** 2
    else:
        raise SqaError(f"unknown resampling window {window!r}; use 'kaiser' or 'hann'")
    shape = torch.where(offsets.abs() <= width, shape, torch.zeros_like(shape))
    kernel = cutoff * torch.sinc(cutoff * offsets) * shape
    return kernel[:, None, :], width


def resample_torch(
    waveform: torch.Tensor,
    orig_rate: int,
    target_rate: int,
    *,
    window: str = "kaiser",
    zero_crossings: int = 24,
    rolloff: float = 0.95,
) -> torch.Tensor:
    """Differentiable band-limited resampling over the last dimension.

    A polyphase windowed-sinc interpolator: the ratio is reduced by the gcd to ``o -> n``, and
    a strided 1-D convolution with ``n`` output channels (one per output phase) maps each block
    of ``o`` input samples to ``n`` output samples. The low-pass cut-off is ``rolloff`` times
    the lower of the two Nyquist frequencies. Gradients flow to ``waveform``; the signal is
    zero-padded at both ends, so the first and last ``zero_crossings`` periods are less exact.

    Args:
        waveform: Signal ``(..., T)`` (float).
        orig_rate: Its sample rate in Hz.
        target_rate: Wanted sample rate in Hz.
        window: ``"kaiser"`` (beta 12, default) or ``"hann"``.
        zero_crossings: Sinc zero crossings kept on each side (filter length).
        rolloff: Cut-off as a fraction of the lower Nyquist frequency.

    Returns:
        ``(..., round(T * target_rate / orig_rate))``, same dtype and device; the input itself
        when the rates are equal.
    """
    if orig_rate == target_rate:
        return waveform
    if orig_rate <= 0 or target_rate <= 0:
        raise SqaError(f"sample rates must be positive, got {orig_rate} and {target_rate}")
    divisor = math.gcd(int(orig_rate), int(target_rate))
    orig, target = int(orig_rate) // divisor, int(target_rate) // divisor
    kernel, width = _sinc_kernel(orig, target, window, zero_crossings, rolloff)
    kernel = kernel.to(dtype=waveform.dtype, device=waveform.device)
    leading, length = waveform.shape[:-1], waveform.shape[-1]
    # Rounded like soxr (half up, in exact integer arithmetic) so both resamplers agree.
    output_length = (2 * length * target + orig) // (2 * orig)
    blocks = math.ceil(length / orig)
    flat = waveform.reshape(-1, 1, length)
    # Left pad = filter context; right pad fills the last block and its right context.
    right = blocks * orig - length + width + 1
    padded = F.pad(flat, (width, right))
    phases = F.conv1d(padded, kernel, stride=orig)  # (B, target, blocks)
    output = phases.transpose(1, 2).reshape(flat.shape[0], -1)[:, :output_length]
    return output.reshape(*leading, output_length)
