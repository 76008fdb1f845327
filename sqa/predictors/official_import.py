"""``sqa import universa-ext``: the URGENT 2026 Track-2 baseline (``model.pt`` + ``config.yaml``) ->
our predictor with the ``baseline`` trunk.

Upstream (urgent-challenge/urgent2026_challenge_track2, ``urgent2026_sqa/model.py``): an SSL model
whose hidden states (all ``num_hidden_layers + 1``) are mixed by ``softmax(weights)``;
``feat_proj`` = Linear + LayerNorm; one shared ``nn.TransformerEncoder`` (post-norm, relu) with a
key-padding mask; mean over valid frames; one ``metric_proj`` linear; per metric a
``RangeActivation`` (both bounds: ``min + (max - min) sigmoid``; lower only:
``min + softplus(x - min)``; upper only: ``max - softplus(max - x)``; none: identity), which is
exactly our :class:`~sqa.predictors.trunk.RangeActivation` with the target statistics left at 0 / 1.
The config is HyperPyYAML; its tags are read as plain data, never executed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml

from sqa.checkpoint.importing import ImportedModel, map_state_dict, require_tensors, source_record
from sqa.checkpoint.safe_unpickle import read_untrusted
from sqa.errors import CheckpointError, SqaError
from sqa.metrics import get_metric_spec
from sqa.predictors.frontends import SslFrontEndConfig
from sqa.predictors.model import MODEL_KIND, TrunkConfig, UniVersa, UniVersaConfig

RENAMES = (
    ("feature_extractor.weights", "front_end.mix.logits"),
    ("feature_extractor.model.", "front_end.model."),
    ("feat_proj.", "encoders.shared.projection."),
    ("encoder.", "encoders.shared.encoder."),
    ("metric_proj.", "heads.shared."),
)
WEIGHT_NORM = {
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
}


class _TagLoader(yaml.SafeLoader):
    """Safe YAML loader that keeps HyperPyYAML tags (``!new:``, ``!ref``, ``!apply:``) as data."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return {"__tag__": suffix, **loader.construct_mapping(node, deep=True)}
    if isinstance(node, yaml.SequenceNode):
        return {"__tag__": suffix, "__args__": loader.construct_sequence(node, deep=True)}
    return {"__tag__": suffix, "__value__": loader.construct_scalar(node)}


_TagLoader.add_multi_constructor("!", _construct_tag)


def read_hyperpyyaml(path: Path) -> dict[str, Any]:
    """The config as plain data with top-level ``!ref <name>`` references resolved."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_TagLoader)
    except (OSError, yaml.YAMLError) as error:
        raise CheckpointError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a Track-2 config (no mapping)")

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and value.get("__tag__") == "ref":
            return resolve(data.get(str(value["__value__"]).strip("<> ")))
        if isinstance(value, dict):
            return {key: resolve(item) for key, item in value.items()}
        return value

    return {key: resolve(value) for key, value in data.items()}


def _range(settings: dict[str, Any], key: str) -> float | None:
    value = settings.get(key)
    return None if value is None or not torch.isfinite(torch.tensor(float(value))) else float(value)


def _direction(name: str) -> bool:
    try:
        return get_metric_spec(name).higher_is_better
    except SqaError:
        return True  # Track-2 metrics are quality scores unless the registry says otherwise


def _ssl_config(ssl_source: Path, freeze: bool) -> SslFrontEndConfig:
    folder = ssl_source if ssl_source.is_dir() else ssl_source.parent
    config_file = ssl_source / "config.json" if ssl_source.is_dir() else ssl_source
    if not config_file.is_file():
        raise CheckpointError(f"{ssl_source} has no config.json of the SSL model")
    preprocessor = folder / "preprocessor_config.json"
    normalise = False
    if preprocessor.is_file():
        normalise = bool(json.loads(preprocessor.read_text(encoding="utf-8")).get("do_normalize"))
    return SslFrontEndConfig(
        architecture=config_file.read_text(encoding="utf-8"), freeze=freeze,
        normalize_waveform=normalise,
    )  # fmt: skip


def config_from_track2(settings: dict[str, Any], ssl: SslFrontEndConfig) -> UniVersaConfig:
    """Our predictor config for a Track-2 ``config.yaml``."""
    model = settings.get("model") or {}
    encoder = model.get("encoder") or {}
    layer = encoder.get("encoder_layer") or {}
    if layer.get("activation", "relu") != "relu" or layer.get("norm_first", False):
        raise CheckpointError("only the post-norm relu TransformerEncoderLayer is supported")
    metrics = model.get("metrics") or settings.get("metrics") or {}
    if not metrics:
        raise CheckpointError("the Track-2 config lists no metrics")
    trunk = TrunkConfig(
        kind="baseline", num_layers=int(encoder.get("num_layers", 6)),
        num_heads=int(layer.get("nhead", 8)), d_model=int(layer.get("d_model", 768)),
        ffn_dim=int(layer.get("dim_feedforward", 2048)), dropout=float(layer.get("dropout", 0.1)),
    )  # fmt: skip
    return UniVersaConfig(
        front_end="ssl", ssl=ssl, trunk=trunk, metrics=tuple(metrics),
        metric_ranges=tuple((n, _range(m, "min"), _range(m, "max")) for n, m in metrics.items()),
        metric_directions=tuple((name, _direction(name)) for name in metrics),
        sample_rate=int(settings.get("sample_rate", 16000)),
    )  # fmt: skip


def _renamer(target_names: set[str]) -> Any:
    def rename(name: str) -> str | None:
        for source, target in RENAMES:
            if name.startswith(source):
                renamed = target + name[len(source) :]
                for old, new in WEIGHT_NORM.items():  # transformers' two weight-norm spellings
                    if renamed not in target_names and renamed.endswith(old):
                        renamed = renamed[: -len(old)] + new
                    elif renamed not in target_names and renamed.endswith(new):
                        renamed = renamed[: -len(new)] + old
                return renamed
        return None

    return rename


def import_universa_ext(sources: list[Path], allow_partial: bool) -> ImportedModel:
    """Import ``model.pt``, ``config.yaml`` and the SSL model folder (or its ``config.json``)."""
    configs = [path for path in sources if path.suffix in (".yaml", ".yml")]
    ssl = [path for path in sources if path.is_dir() or path.suffix == ".json"]
    weights = [path for path in sources if path not in configs and path not in ssl]
    if len(configs) != 1 or len(ssl) != 1 or len(weights) != 1:
        raise CheckpointError(
            "universa-ext takes model.pt, config.yaml and the local SSL model folder (or its "
            "config.json, e.g. of microsoft/wavlm-base-plus)"
        )
    settings = read_hyperpyyaml(configs[0])
    extractor = (settings.get("model") or {}).get("feature_extractor") or {}
    config = config_from_track2(settings, _ssl_config(ssl[0], bool(extractor.get("freeze", True))))
    payload = read_untrusted(weights[0])
    state = require_tensors(payload, "model" if "model" in payload else None, weights[0])
    model = UniVersa(config).eval()
    ignored = _check_ranges(state, config)
    fill = {"target_mean": "0 (no standardisation upstream)", "target_std": "1"}
    report = map_state_dict(
        model, state, _renamer(set(model.state_dict())), allow_partial=allow_partial,
        ignored=ignored, fill=fill,
    )  # fmt: skip
    metadata = {
        "sources": [source_record(path) for path in (weights[0], configs[0])],
        "import": report,
        "upstream": "urgent-challenge/urgent2026_challenge_track2 UniVersaExt",
    }
    return ImportedModel(model=model, config=model.config, kind=MODEL_KIND, metadata=metadata)


def _check_ranges(state: dict[str, torch.Tensor], config: UniVersaConfig) -> dict[str, str]:
    ignored = {}
    for name, low, high in config.metric_ranges:
        for key, expected in (("min_value", low), ("max_value", high)):
            stored = state.get(f"metric2act.{name}.{key}")
            if stored is None:
                continue
            value = float(stored)
            same = (expected is None and not torch.isfinite(stored)) or value == expected
            if not same:
                raise CheckpointError(f"metric2act.{name}.{key} = {value} differs from config.yaml")
            ignored[f"metric2act.{name}.{key}"] = "range bound, equal to config.yaml"
    return ignored
