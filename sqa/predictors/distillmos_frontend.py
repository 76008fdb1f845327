"""The Distill-MOS network as a frozen multi-layer feature extractor.

Distill-MOS (Stahl & Gamper, ICASSP 2025; package ``distillmos`` 0.9.1, **MIT licence, Copyright
(c) Microsoft Corporation**) is a 4.1 M-parameter speech-quality model: a complex-spectrogram CNN
(20 ms window, 10 ms hop, time stride 2) followed by a 7-layer Transformer (d=200, 8 heads) at
16 kHz on fixed 7.68 s windows (122 880 samples -> 384 frames of 20 ms). It is a pretrained
encoder that is really available offline: its weights ship inside the installed package.

We use its network, not its score: forward hooks on the 7 Transformer layers capture
``(windows, 384, 200)`` activations, which are mixed by learnable softmax layer weights (like an SSL
front end). Files are cut into consecutive 7.68 s windows (the last one zero-padded, which is also
how Distill-MOS itself pads short files), each window is peak-normalised as in Distill-MOS, and the
window features are concatenated along time. A window starts at the same sample whatever else is in
the batch, so features do not depend on batch composition; frames past an item's end are masked by
the trunk. ``distillmos`` imports torchaudio at module level, hence
:func:`sqa.compat.torchaudio_fallback.ensure_torchaudio` before importing it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sqa.errors import MissingDependencyError
from sqa.predictors.frontends import FrozenAwareModule, MixLayers

DISTILLMOS_LICENSE = "MIT, Copyright (c) Microsoft Corporation (distillmos package, Distill-MOS)"
DISTILLMOS_SAMPLE_RATE = 16000
WINDOW_SAMPLES = 122880  # 7.68 s at 16 kHz, the network's fixed input length
FRAMES_PER_WINDOW = 384
SAMPLES_PER_FRAME = WINDOW_SAMPLES // FRAMES_PER_WINDOW  # 320 = 20 ms
NUM_LAYERS = 7
FEATURE_DIM = 200


@dataclass(frozen=True)
class DistillMosConfig:
    """Distill-MOS front end.

    Attributes:
        layers: Transformer layers (0-6) whose outputs are mixed.
        freeze: Keep the Distill-MOS weights fixed.
        pretrained: Load the weights shipped in the package (off only for shape tests).
    """

    layers: tuple[int, ...] = tuple(range(NUM_LAYERS))
    freeze: bool = True
    pretrained: bool = True


def build_distillmos_network(pretrained: bool) -> nn.Module:
    """Instantiate ``distillmos.ConvTransformerSQAModel`` (weights from the package if asked).

    Raises:
        MissingDependencyError: If distillmos (or torchaudio, which it imports) is unavailable.
    """
    from sqa.compat.torchaudio_fallback import ensure_torchaudio

    ensure_torchaudio()
    try:
        import contextlib
        import io

        from distillmos import ConvTransformerSQAModel
    except ImportError as error:
        raise MissingDependencyError(
            f"the Distill-MOS front end needs distillmos: {error}"
        ) from None
    # The constructor prints a line when it loads weights; keep stdout clean for CLI output.
    with contextlib.redirect_stdout(io.StringIO()):
        return ConvTransformerSQAModel(load_weights=pretrained, segmenting_in_forward=False)


def compressed_spectrogram(windows: torch.Tensor) -> torch.Tensor:
    """Distill-MOS input features: the power-law (0.3) compressed complex STFT.

    Same framing as Distill-MOS (20 ms Hann window, 10 ms hop, reflect padding of 5 ms each side),
    but the magnitude is ``sqrt(|X|^2 + 1e-12)`` instead of ``sqrt(|X|^2)``: the plain square root
    has an infinite derivative at silent bins, which turns input gradients into NaN wherever a
    window contains digital silence or padding. Values differ only for bins below about 1e-6.

    Args:
        windows: ``(N, S)`` peak-normalised windows.

    Returns:
        ``(N, 2, 161, S // 160)`` real/imaginary compressed spectrogram.
    """
    hop, win = 160, 320
    padded = F.pad(windows, ((win - hop) // 2, (win - hop) // 2), mode="reflect")
    window = torch.hann_window(win, device=windows.device, dtype=windows.dtype)
    spectrum = torch.stft(
        padded,
        n_fft=win,
        hop_length=hop,
        win_length=win,
        center=False,
        window=window,
        return_complex=True,
    )
    parts = torch.view_as_real(spectrum)  # (N, 161, frames, 2)
    magnitude = torch.sqrt((parts**2).sum(dim=-1, keepdim=True) + 1e-12)
    compressed = magnitude**0.3 * parts / magnitude
    return compressed.permute(0, 3, 1, 2)


def frame_counts(lengths: torch.Tensor) -> torch.Tensor:
    """20 ms frames covering ``(B,)`` sample counts (a started frame counts)."""
    return torch.div(lengths + SAMPLES_PER_FRAME - 1, SAMPLES_PER_FRAME, rounding_mode="floor")


def _keep_output(
    module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor
) -> None:
    """Forward hook: remember a layer's output on the layer itself.

    Storing it on the hooked module (not in a closure over the front end) keeps ``copy.deepcopy``
    of the predictor correct: the copy's hooks write to the copy's layers.
    """
    module.captured_output = output


class DistillMosFrontEnd(FrozenAwareModule):
    """Mixed Transformer-layer activations of Distill-MOS over 7.68 s windows."""

    def __init__(self, config: DistillMosConfig) -> None:
        super().__init__()
        if not config.layers or any(not 0 <= layer < NUM_LAYERS for layer in config.layers):
            raise ValueError(f"Distill-MOS layers must be in 0..{NUM_LAYERS - 1}")
        self.config = config
        self.frozen = config.freeze
        self.network = build_distillmos_network(config.pretrained)
        self.window_cache: dict[bytes, torch.Tensor] | None = None
        self.output_dim = FEATURE_DIM
        self.mix = MixLayers(len(config.layers))
        for index in config.layers:
            self._encoder_layers()[index].register_forward_hook(_keep_output)
        if self.frozen:
            self.freeze_backbone()

    def backbone(self) -> nn.Module:
        return self.network

    def enable_window_cache(self) -> None:
        """Remember the frozen layer outputs of every window seen (training on fixed files).

        A frozen network gives the same outputs for the same window in every epoch; with the
        cache, each distinct window runs once. Keys are digests of the window's samples, values
        are fp16 on the CPU (about 1 MB per window with all 7 layers). Only used where no
        gradient flows into the front end.
        """
        self.window_cache = {}

    def _cached_window_features(self, windows: torch.Tensor) -> torch.Tensor:
        """:meth:`_window_features` through :attr:`window_cache` (no graph)."""
        cache = self.window_cache
        assert cache is not None
        keys = [
            hashlib.blake2b(window.detach().cpu().numpy().tobytes(), digest_size=16).digest()
            for window in windows
        ]
        missing = sorted({index for index, key in enumerate(keys) if key not in cache})
        if missing:
            with torch.no_grad():
                computed = self._window_features(windows[missing])
            for position, index in enumerate(missing):
                cache[keys[index]] = computed[:, position].to("cpu", torch.float16)
        stacked = torch.stack([cache[key] for key in keys], dim=1)
        return stacked.to(windows.device, windows.dtype)

    def _encoder_layers(self) -> nn.ModuleList:
        return self.network.transformer_pool_attn.transformer.transformer_encoder.layers

    def _window_features(
        self,
        windows: torch.Tensor,
        spectrogram_of: Callable[[torch.Tensor], torch.Tensor] = compressed_spectrogram,
    ) -> torch.Tensor:
        """Run Distill-MOS on ``(N, 122880)`` windows; return ``(L, N, 384, 200)`` layer outputs.

        ``spectrogram_of`` computes :func:`compressed_spectrogram` (the ONNX export passes a
        real-valued version of it).
        """
        peak = windows.abs().amax(dim=1, keepdim=True)
        normalised = windows / (peak + 1e-8)
        spectrogram = spectrogram_of(normalised)
        frames = torch.flatten(self.network.cnn.cnn(spectrogram), 1, -2).permute(0, 2, 1)
        self.network.transformer_pool_attn(frames)
        layers = []
        for index in self.config.layers:
            layer = self._encoder_layers()[index]
            layers.append(layer.captured_output)
            layer.captured_output = None  # do not keep the graph alive between calls
        return torch.stack(layers, dim=0)

    def forward(
        self, waveform: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Extract mixed Distill-MOS features.

        Args:
            waveform: ``(B, T)`` at 16 kHz.
            lengths: ``(B,)`` valid samples per item.

        Returns:
            ``(B, F, 200)`` features (20 ms frames) and ``(B,)`` valid frame counts.
        """
        layers, frame_lengths = self.layer_features(waveform, lengths)
        return self.mix(layers), frame_lengths

    def layer_features(
        self, waveform: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unmixed outputs of the configured layers.

        Args:
            waveform: ``(B, T)`` at 16 kHz.
            lengths: ``(B,)`` valid samples per item.

        Returns:
            ``(L, B, F, 200)`` layer outputs and ``(B,)`` valid frame counts.
        """
        batch, total = waveform.shape
        num_windows = max(1, -(-total // WINDOW_SAMPLES))
        padded = F.pad(waveform, (0, num_windows * WINDOW_SAMPLES - total))
        windows = padded.reshape(batch * num_windows, WINDOW_SAMPLES)
        needs_graph = waveform.requires_grad or not self.frozen
        if self.window_cache is not None and not (needs_graph and torch.is_grad_enabled()):
            layers = self._cached_window_features(windows)
        else:
            with torch.set_grad_enabled(needs_graph and torch.is_grad_enabled()):
                layers = self._window_features(windows)
        layers = layers.reshape(len(self.config.layers), batch, -1, FEATURE_DIM)
        frame_lengths = frame_counts(lengths)
        max_frames = max(1, int(frame_lengths.max().item()))
        return layers[:, :, :max_frames], frame_lengths.long().clamp(min=1, max=max_frames)
