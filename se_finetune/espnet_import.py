"""``sqa import espnet-bsrnn``: ESPnet's enh BSRNN (``model.pth`` + ``config.yaml``) -> ours.

ESPnet facts reproduced (espnet2/enh/encoder/stft_encoder.py, espnet2/layers/stft.py,
espnet2/enh/layers/bsrnn.py, espnet2/bin/enh_inference.py):

* STFT: Hann window of ``n_fft`` samples (``win_length`` defaults to ``n_fft``), centred,
  ``normalized=False`` (no 1/sqrt(n_fft) scaling), one-sided; at another rate ``fs`` the encoder
  scales ``n_fft`` and hop by ``fs / default_fs``, i.e. fixed 20 ms / 10 ms for 960 / 480 at 48 kHz,
  which is our ``window_ms`` / ``hop_ms``.
* Band layout for ``input_dim`` 481 at 48 kHz: ``[5] + [4]*19 + [10]*6 + [40]*7 + [60]`` bins;
  lower rates use the bands up to Nyquist, the last one zero-padded: our ``band_plan``.
* ``model_conf.normalize_variance``: the input is divided by ``torch.std`` (mean removed,
  unbiased) and the output multiplied back: our ``input_normalisation="std"``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from se_finetune.bsrnn import BAND_WIDTHS_48K, BSRNN, BSRNNConfig
from sqa.checkpoint.importing import ImportedModel, map_state_dict, require_tensors, source_record
from sqa.checkpoint.safe_unpickle import read_untrusted
from sqa.errors import CheckpointError

RENAMES = (
    (r"band_split\.norm\.(\d+)\.", r"band_norms.\1."),
    (r"band_split\.fc\.(\d+)\.", r"band_projections.\1."),
    (r"norm_time\.(\d+)\.", r"blocks.\1.time_norm."),
    (r"rnn_time\.(\d+)\.", r"blocks.\1.time_lstm."),
    (r"fc_time\.(\d+)\.", r"blocks.\1.time_projection."),
    (r"norm_freq\.(\d+)\.", r"blocks.\1.band_norm."),
    (r"rnn_freq\.(\d+)\.", r"blocks.\1.band_lstm."),
    (r"fc_freq\.(\d+)\.", r"blocks.\1.band_projection."),
    (r"mask_decoder\.mlp_mask\.(\d+)\.", r"mask_heads.\1."),
    (r"mask_decoder\.mlp_residual\.(\d+)\.", r"residual_heads.\1."),
)
PREFIX = "separator.bsrnn."


def rename(name: str) -> str | None:
    """ESPnet parameter name -> ours (``None``: no place in our model)."""
    if not name.startswith(PREFIX):
        return None
    rest = name[len(PREFIX) :]
    for pattern, replacement in RENAMES:
        if re.match(pattern, rest):
            return re.sub(pattern, replacement, rest, count=1)
    return None


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckpointError(f"unsupported ESPnet configuration: {message}")


def _stft_timing(conf: dict[str, Any], part: str) -> tuple[float, float, int]:
    n_fft, default_fs = int(conf.get("n_fft", 512)), int(conf.get("default_fs", 16000))
    _require(conf.get("win_length") in (None, n_fft), f"{part} win_length must equal n_fft")
    _require(conf.get("window", "hann") == "hann", f"{part} window must be hann")
    _require(conf.get("center", True) and not conf.get("normalized", False), f"{part} centre")
    _require(conf.get("spec_transform_type") in (None, "none"), f"{part} spec_transform_type")
    hop = int(conf.get("hop_length", 128))
    return 1000.0 * n_fft / default_fs, 1000.0 * hop / default_fs, default_fs


def config_from_espnet(settings: dict[str, Any]) -> BSRNNConfig:
    """Our :class:`BSRNNConfig` for an ESPnet training ``config.yaml`` (checked)."""
    _require(settings.get("encoder") == "stft" and settings.get("decoder") == "stft", "STFT only")
    _require(settings.get("separator") == "bsrnn", "separator must be bsrnn")
    timing = _stft_timing(settings.get("encoder_conf") or {}, "encoder")
    _require(_stft_timing(settings.get("decoder_conf") or {}, "decoder") == timing, "decoder STFT")
    separator = settings.get("separator_conf") or {}
    _require(int(separator.get("num_spk", 1)) == 1, "num_spk must be 1")
    _require(not separator.get("predict_noise", False), "predict_noise")
    _require(separator.get("norm_type", "GN") == "GN", "norm_type must be GN")
    subbands = separator.get("subbands")
    _require(subbands is None or tuple(subbands) == BAND_WIDTHS_48K, "custom subbands")
    target_fs = int(separator.get("target_fs", 48000))
    _require(target_fs == 48000 and timing[:2] == (20.0, 10.0), "48 kHz, 20 ms / 10 ms STFT")
    model_conf = settings.get("model_conf") or {}
    return BSRNNConfig(
        sample_rate=target_fs,
        num_channels=int(separator.get("num_channels", 16)),
        num_layers=int(separator.get("num_layers", 6)),
        window_ms=timing[0],
        hop_ms=timing[1],
        normalise_input=bool(
            model_conf.get("normalize_variance") or model_conf.get("normalize_variance_per_ch")
        ),
        input_normalisation="std",
        causal=bool(separator.get("causal", False)),
    )


def import_espnet_bsrnn(sources: list[Path], allow_partial: bool) -> ImportedModel:
    """Import ESPnet's ``model.pth`` and its ``config.yaml`` (in any order)."""
    configs = [path for path in sources if path.suffix in (".yaml", ".yml")]
    weights = [path for path in sources if path not in configs]
    if len(configs) != 1 or len(weights) != 1:
        raise CheckpointError("espnet-bsrnn takes two sources: model.pth and config.yaml")
    try:
        settings = yaml.safe_load(configs[0].read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise CheckpointError(f"cannot read {configs[0]}: {error}") from None
    if not isinstance(settings, dict):
        raise CheckpointError(f"{configs[0]} is not an ESPnet config (no mapping)")
    config = config_from_espnet(settings)
    state = require_tensors(read_untrusted(weights[0]), None, weights[0])
    model = BSRNN(config).eval()
    report = map_state_dict(model, state, rename, allow_partial=allow_partial)
    metadata = {
        "sources": [source_record(weights[0]), source_record(configs[0])],
        "import": report,
        "upstream": "espnet2 enh: STFTEncoder + BSRNNSeparator + STFTDecoder",
    }
    return ImportedModel(model=model, config=config, kind="bsrnn", metadata=metadata)
