"""Run inside the ESPnet side environment (see espnet_env.sh): build ESPnet's STFT encoder, BSRNN
separator and STFT decoder with random weights, save them as ESPnet does (``model.pth`` = the
enhancement model's state dict, ``config.yaml`` with ``encoder``/``separator``/``decoder`` and
their ``*_conf``), and save ESPnet's restored output for random audio at 16 and 48 kHz.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml
from espnet2.enh.decoder.stft_decoder import STFTDecoder
from espnet2.enh.encoder.stft_encoder import STFTEncoder
from espnet2.enh.separator.bsrnn_separator import BSRNNSeparator

STFT_CONF = {"n_fft": 960, "hop_length": 480, "default_fs": 48000}


class EnhancementLayout(torch.nn.Module):
    """Holds the three parts under the attribute names of ESPnetEnhancementModel."""

    def __init__(self, separator_conf: dict) -> None:
        super().__init__()
        self.encoder = STFTEncoder(**STFT_CONF, use_builtin_complex=True)
        self.separator = BSRNNSeparator(input_dim=481, **separator_conf)
        self.decoder = STFTDecoder(**STFT_CONF)

    @torch.no_grad()
    def enhance(self, audio: torch.Tensor, fs: int) -> torch.Tensor:
        """ESPnet's inference path with model_conf.normalize_variance (enh_inference.py)."""
        std = torch.std(audio, dim=1, keepdim=True)
        lengths = torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long)
        spectrum, frames = self.encoder(audio / std, lengths, fs=fs)
        masked, frames, _ = self.separator(spectrum, frames, {"fs": fs})
        waves, _ = self.decoder(masked[0], lengths, fs=fs)
        return waves * std


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--tiny", action="store_true", help="2 channels, 1 layer, 50 ms at 16 kHz (fixture size)"
    )
    arguments = parser.parse_args()
    torch.manual_seed(15 if arguments.tiny else 16)
    separator_conf = {
        "num_spk": 1,
        "num_channels": 2 if arguments.tiny else 16,
        "num_layers": 1 if arguments.tiny else 2,
        "target_fs": 48000,
        "causal": False,
        "norm_type": "GN",
    }
    model = EnhancementLayout(separator_conf).eval()
    with torch.no_grad():  # move every weight off its initial value (norms start at 1 / 0)
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    arguments.output.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), arguments.output / "model.pth")
    config = {
        "encoder": "stft",
        "encoder_conf": {**STFT_CONF, "use_builtin_complex": True},
        "separator": "bsrnn",
        "separator_conf": separator_conf,
        "decoder": "stft",
        "decoder_conf": STFT_CONF,
        "model_conf": {"normalize_variance": True},
    }
    (arguments.output / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    outputs = {}
    # The fixture keeps one short 16 kHz item; the full run checks two items at 16 and 48 kHz.
    for fs in (16000,) if arguments.tiny else (16000, 48000):
        audio = 0.1 * (torch.randn(1, fs // 20) if arguments.tiny else torch.randn(2, fs // 2))
        outputs[f"input_{fs}"] = audio
        outputs[f"output_{fs}"] = model.enhance(audio, fs)
    torch.save(outputs, arguments.output / "reference.pt")
    print(f"saved {arguments.output} ({sum(p.numel() for p in model.parameters())} parameters)")


if __name__ == "__main__":
    main()
