"""NISQA v2 (multi-dimensional, ``NISQA_DIM``) inference from a user-supplied weights file.

The ``nisqa`` PyPI package pins an old torch, so this module re-implements the inference path of
the NISQA CNN-SA-AP model: 48-band log-mel spectrogram (48 kHz, 20 ms Hann window, 10 ms hop, 4096
FFT, 0..20 kHz, magnitude in dB with floor -80 dB) cut into 15-frame segments every 4 frames; a
6-layer adaptive-max-pool CNN per segment; 2 self-attention layers over segments; 5 attention
pooling heads (MOS, noisiness, discontinuity, coloration, loudness). Module names mirror the
checkpoint's state-dict keys so the official ``nisqa.tar`` (a dict with ``args`` and
``model_state_dict``) loads with ``torch.load(weights_only=True)``. Input is resampled to
48 kHz (NISQA's training rate; the original tool scores files at their native rate, which shifts
the features of 16 kHz files).

NISQA weights are licensed CC BY-NC-SA 4.0: do not train shipped models on their outputs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from sqa.audio import resample, validate_audio
from sqa.errors import CheckpointError, TooShortAudioError
from sqa.metrics.features import mel_spectrogram, power_to_db

NISQA_OUTPUTS = ("nisqa_mos", "nisqa_noi", "nisqa_dis", "nisqa_col", "nisqa_loud")


@dataclass(frozen=True)
class NisqaConfig:
    """Hyper-parameters of the NISQA_DIM model and its features (defaults: NISQA v2)."""

    sample_rate: int = 48000
    n_fft: int = 4096
    hop_seconds: float = 0.01
    window_seconds: float = 0.02
    n_mels: int = 48
    fmax: float = 20000.0
    segment_length: int = 15
    segment_hop: int = 4
    channels: tuple[int, int, int] = (16, 32, 64)
    pools: tuple[tuple[int, int], ...] = ((24, 7), (12, 5), (6, 3))
    d_model: int = 64
    heads: int = 1
    layers: int = 2
    feedforward: int = 64
    pool_hidden: int = 128

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> NisqaConfig:
        """Read the ``args`` dict stored in a NISQA checkpoint."""
        if args.get("model") != "NISQA_DIM" or args.get("cnn_model") != "adapt":
            raise CheckpointError("only NISQA_DIM checkpoints with the adaptive CNN are supported")
        if args.get("td") != "self_att" or args.get("td_2") not in (None, "skip"):
            raise CheckpointError(
                "only NISQA checkpoints with one self-attention stage are supported"
            )
        return cls(
            n_fft=int(args["ms_n_fft"]),
            hop_seconds=float(args["ms_hop_length"]),
            window_seconds=float(args["ms_win_length"]),
            n_mels=int(args["ms_n_mels"]),
            fmax=float(args["ms_fmax"]),
            segment_length=int(args["ms_seg_length"]),
            segment_hop=int(args["ms_seg_hop_length"]),
            channels=(args["cnn_c_out_1"], args["cnn_c_out_2"], args["cnn_c_out_3"]),
            pools=tuple(
                tuple(pool) for pool in (args["cnn_pool_1"], args["cnn_pool_2"], args["cnn_pool_3"])
            ),
            d_model=int(args["td_sa_d_model"]),
            heads=int(args["td_sa_nhead"]),
            layers=int(args["td_sa_num_layers"]),
            feedforward=int(args["td_sa_h"]),
            pool_hidden=int(args["pool_att_h"]),
        )


class _Holder(nn.Module):
    """Keeps the ``<part>.model.<...>`` key layout of the original checkpoints."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Delegate to the held module."""
        return self.model(*inputs)


class NisqaCnn(nn.Module):
    """Per-segment CNN: (N, 1, mels, frames) -> (N, channels[2] * pools[2][0])."""

    def __init__(self, config: NisqaConfig) -> None:
        super().__init__()
        first, second, third = config.channels
        sizes = [(1, first), (first, second), (second, third), (third, third), (third, third)]
        for index, (inputs, outputs) in enumerate(sizes, start=1):
            self.add_module(f"conv{index}", nn.Conv2d(inputs, outputs, 3, padding=1))
            self.add_module(f"bn{index}", nn.BatchNorm2d(outputs))
        # The last kernel spans the remaining width so the time axis collapses to one.
        self.conv6 = nn.Conv2d(third, third, (3, config.pools[2][1]), padding=(1, 0))
        self.bn6 = nn.BatchNorm2d(third)
        self.pools = config.pools
        self.fan_out = third * config.pools[2][0]

    def _block(self, index: int, features: torch.Tensor) -> torch.Tensor:
        convolution, norm = getattr(self, f"conv{index}"), getattr(self, f"bn{index}")
        return functional.relu(norm(convolution(features)))

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        """Map segments (N, 1, mels, frames) to features (N, fan_out)."""
        features = functional.adaptive_max_pool2d(self._block(1, segments), self.pools[0])
        features = functional.adaptive_max_pool2d(self._block(2, features), self.pools[1])
        features = self._block(4, self._block(3, features))
        features = functional.adaptive_max_pool2d(features, self.pools[2])
        features = self._block(6, self._block(5, features))
        return features.reshape(features.shape[0], self.fan_out)


class NisqaAttentionLayer(nn.Module):
    """Post-norm transformer encoder layer (sequence-first layout)."""

    def __init__(self, config: NisqaConfig) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(config.d_model, config.heads)
        self.linear1 = nn.Linear(config.d_model, config.feedforward)
        self.linear2 = nn.Linear(config.feedforward, config.d_model)
        self.norm1 = nn.LayerNorm(config.d_model)
        self.norm2 = nn.LayerNorm(config.d_model)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """(T, B, D) -> (T, B, D)."""
        attended = self.self_attn(sequence, sequence, sequence, need_weights=False)[0]
        sequence = self.norm1(sequence + attended)
        return self.norm2(sequence + self.linear2(functional.relu(self.linear1(sequence))))


class NisqaSelfAttention(nn.Module):
    """Input projection, layer norm and the attention layers over the segment sequence."""

    def __init__(self, config: NisqaConfig, input_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, config.d_model)
        self.norm1 = nn.LayerNorm(config.d_model)
        self.layers = nn.ModuleList(NisqaAttentionLayer(config) for _ in range(config.layers))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, input_size) -> (B, T, D)."""
        sequence = self.norm1(self.linear(features).transpose(0, 1))
        for layer in self.layers:
            sequence = layer(sequence)
        return sequence.transpose(0, 1)


class NisqaAttentionPool(nn.Module):
    """Attention pooling over time with a feed-forward scorer, then a linear output."""

    def __init__(self, config: NisqaConfig) -> None:
        super().__init__()
        self.linear1 = nn.Linear(config.d_model, config.pool_hidden)
        self.linear2 = nn.Linear(config.pool_hidden, 1)
        self.linear3 = nn.Linear(config.d_model, 1)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, 1)."""
        weights = torch.softmax(self.linear2(functional.relu(self.linear1(sequence))), dim=1)
        return self.linear3((weights * sequence).sum(dim=1))


class Nisqa(nn.Module):
    """NISQA_DIM: segments (T, 1, mels, frames) of one file -> 5 scores (1, 5)."""

    def __init__(self, config: NisqaConfig) -> None:
        super().__init__()
        self.config = config
        self.cnn = _Holder(NisqaCnn(config))
        self.time_dependency = _Holder(NisqaSelfAttention(config, self.cnn.model.fan_out))
        self.pool_layers = nn.ModuleList(_Holder(NisqaAttentionPool(config)) for _ in NISQA_OUTPUTS)

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        """Score one file from its segments (T, 1, mels, frames); returns (1, 5)."""
        features = self.cnn(segments)[None]  # (1, T, fan_out)
        sequence = self.time_dependency(features)
        return torch.cat([pool(sequence) for pool in self.pool_layers], dim=1)


def nisqa_segments(samples: np.ndarray, config: NisqaConfig) -> torch.Tensor:
    """Log-mel segments of a signal at ``config.sample_rate``.

    Returns:
        float32 tensor (segments, 1, n_mels, segment_length).
    """
    hop = int(config.sample_rate * config.hop_seconds)
    window = int(config.sample_rate * config.window_seconds)
    magnitude = mel_spectrogram(
        samples, config.sample_rate, n_fft=config.n_fft, hop=hop, window_length=window,
        n_mels=config.n_mels, power=1.0, fmax=config.fmax, pad_mode="reflect",
    )  # fmt: skip
    # librosa.amplitude_to_db(ref=1, amin=1e-4, top_db=80) expressed on power.
    spectrum = power_to_db(magnitude**2, 1.0, minimum=1e-8, top_db=80.0)
    count = spectrum.shape[1] - (config.segment_length - 1)
    if count < 1:
        raise TooShortAudioError("NISQA needs at least 150 ms of audio")
    index = np.arange(config.segment_length)[None, :] + np.arange(count)[:, None]
    segments = spectrum[:, index].transpose(1, 0, 2)[:, None]  # (count, 1, mels, length)
    return torch.from_numpy(np.ascontiguousarray(segments[:: config.segment_hop], np.float32))


@functools.cache
def load_nisqa(path: str) -> Nisqa:
    """Load a NISQA checkpoint (``args`` + ``model_state_dict``) once per process.

    Raises:
        CheckpointError: If the file is not a supported NISQA checkpoint.
    """
    from sqa.checkpoint.reading import read_weights_only, shorten

    payload = read_weights_only(path)  # one line of ours for pickles and foreign files
    try:
        config = NisqaConfig.from_args(payload["args"])
        model = Nisqa(config)
        model.load_state_dict(payload["model_state_dict"])
    except CheckpointError:
        raise
    except Exception as error:  # any structure other than NISQA's args + model_state_dict
        raise CheckpointError(
            f"{path}: not a usable NISQA checkpoint ({type(error).__name__}: {shorten(error)})"
        ) from None
    return model.eval()


def nisqa_scores(estimate: np.ndarray, *, sample_rate: int, weights: str) -> dict[str, float]:
    """NISQA MOS and the four quality dimensions of one clip.

    Args:
        estimate: Signal (T,) at ``sample_rate`` (resampled to 48 kHz).
        sample_rate: Its rate in Hz.
        weights: Path of the NISQA checkpoint.

    Returns:
        ``nisqa_mos``, ``nisqa_noi``, ``nisqa_dis``, ``nisqa_col``, ``nisqa_loud``.
    """
    model = load_nisqa(weights)
    validate_audio(estimate, sample_rate, min_duration=0.0, source="estimate")
    audio = resample(np.asarray(estimate, dtype=np.float32), sample_rate, model.config.sample_rate)
    with torch.inference_mode():
        scores = model(nisqa_segments(audio, model.config))[0]
    return dict(zip(NISQA_OUTPUTS, map(float, scores), strict=True))
