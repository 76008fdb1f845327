"""``sqa import urgent-pk``: an official URGENT-PK Lightning checkpoint -> our early-fusion ranker.

The official model (``urgentpk/urgentpk_model.py``, ``AbModel``) is a torchaudio log-mel front end
(16 kHz, ``n_fft`` 320, window 160, hop 80 = the default ``win_length // 2``, 120 HTK bands,
power, dB with a 1e-10 floor) feeding ``urgentpk/resnet.py``'s ResNet34 (2 input channels,
``m_channels`` 32, dropout 0.3) whose ``embedding`` linear gives the logit and the two MOS. Its
statistics pooling runs over every frame with an unbiased variance, so the imported model uses
``pooling="urgentpk"``. The mel filterbank and window stored in the file are checked against ours
instead of being loaded (ours are computed, not stored).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from rankers.features import LogMelSpectrogram
from rankers.model import MODEL_KIND, PairwiseRanker, PairwiseRankerConfig
from sqa.checkpoint.importing import ImportedModel, map_state_dict, require_tensors, source_record
from sqa.checkpoint.safe_unpickle import read_untrusted
from sqa.errors import CheckpointError

PREFIX = "model.model.resnet."
MEL_PREFIX = "model.encoder.0."
BLOCK_COUNTS = {"resnet34": (3, 4, 6, 3), "resnet18": (2, 2, 2, 2)}
OFFICIAL_MEL = {"n_fft": 320, "win_length": 160, "hop_length": 80, "n_mels": 120}


def rename(name: str) -> str | None:
    """Official parameter name -> ours (``None``: no place in our model)."""
    if not name.startswith(PREFIX):
        return None
    rest = name[len(PREFIX) :]
    if rest.startswith("conv1."):
        return "trunk.stem.0." + rest[len("conv1.") :]
    if rest.startswith("bn1."):
        return "trunk.stem.1." + rest[len("bn1.") :]
    if rest.startswith("embedding."):
        return "head." + rest[len("embedding.") :]
    match = re.match(r"layer(\d)\.(.*)$", rest)
    if match:
        return f"trunk.stages.{int(match.group(1)) - 1}.{match.group(2)}"
    return None


def _hyper_parameters(payload: dict[str, Any]) -> dict[str, Any]:
    hyper = payload.get("hyper_parameters") or {}
    settings = hyper.get("cfg", hyper) if isinstance(hyper, dict) else {}
    return settings if isinstance(settings, dict) else {}


def _official_config(
    state: dict[str, torch.Tensor], settings: dict[str, Any]
) -> PairwiseRankerConfig:
    encoder = settings.get("encoder", "mel")
    if encoder != "mel":
        raise CheckpointError(
            f"URGENT-PK encoder {encoder!r} is not supported: only the 'mel' encoder is imported"
        )
    stem = state.get(PREFIX + "conv1.weight")
    head = state.get(PREFIX + "embedding.weight")
    if stem is None or head is None or stem.shape[1] != 2 or head.shape[0] != 3:
        raise CheckpointError(
            "not an URGENT-PK resnet checkpoint: expected model.model.resnet.conv1 with 2 input "
            "channels and model.model.resnet.embedding with 3 outputs"
        )
    counts = tuple(
        len({key.split(".")[4] for key in state if key.startswith(f"{PREFIX}layer{stage}.")})
        for stage in range(1, 5)
    )
    backbone = settings.get("backbone")
    if backbone is not None and str(backbone) not in BLOCK_COUNTS:
        raise CheckpointError(f"URGENT-PK backbone {backbone!r} is not supported (resnet34/18)")
    if backbone is not None and BLOCK_COUNTS[str(backbone)] != counts:
        raise CheckpointError(f"backbone {backbone!r} does not match the stored blocks {counts}")
    channels = int(stem.shape[0])
    return PairwiseRankerConfig(
        encoder="mel",
        sample_rate=16000,
        **OFFICIAL_MEL,
        stem_channels=channels,
        widths=(channels, 2 * channels, 4 * channels, 8 * channels),
        block_counts=counts,
        strides=(1, 2, 2, 2),
        dropout=0.3,
        pooling="urgentpk",
    )


def _check_mel_buffers(state: dict[str, torch.Tensor]) -> dict[str, str]:
    """Compare the stored torchaudio filterbank and window with ours; return them as ignored."""
    reference = LogMelSpectrogram(16000, **OFFICIAL_MEL)
    expected = {
        MEL_PREFIX + "mel_scale.fb": reference.filterbank,
        MEL_PREFIX + "spectrogram.window": reference.window,
    }
    ignored = {}
    for name, ours in expected.items():
        stored = state.get(name)
        if stored is None:
            continue
        if stored.shape != ours.shape or not torch.allclose(stored.float(), ours, atol=1e-6):
            raise CheckpointError(f"{name} differs from the official mel settings {OFFICIAL_MEL}")
        ignored[name] = "computed by our front end; checked equal to the stored buffer"
    for name in ("nn.weight", "nn.bias"):
        if name in state:
            ignored[name] = "unused Linear(100, 100) of the official AbTestModel"
    return ignored


def import_urgent_pk(sources: list[Path], allow_partial: bool) -> ImportedModel:
    """Import one official URGENT-PK ``.ckpt`` (see the module docstring)."""
    if len(sources) != 1:
        raise CheckpointError("urgent-pk takes exactly one source: the Lightning .ckpt file")
    source = sources[0]
    payload = read_untrusted(source)
    if not isinstance(payload, dict):
        raise CheckpointError(f"{source} is not a Lightning checkpoint (no dict at the top)")
    state = require_tensors(payload, "state_dict", source)
    config = _official_config(state, _hyper_parameters(payload))
    model = PairwiseRanker(config).eval()
    report = map_state_dict(
        model, state, rename, allow_partial=allow_partial, ignored=_check_mel_buffers(state)
    )
    metadata = {
        "sources": [source_record(source)],
        "import": report,
        "upstream": "urgent-challenge/URGENT-PK (AbModel, mel encoder)",
        "lightning_version": str(payload.get("pytorch-lightning_version", "")),
    }
    return ImportedModel(model=model, config=config, kind=MODEL_KIND, metadata=metadata)
