"""`sqa import universa-ext` and the SSL front end against transformers, on a tiny random WavLM.

Upstream facts (urgent-challenge/urgent2026_challenge_track2, urgent2026_sqa/model.py @50c6728):
* SSLFeatureExtractor L15-37: ``self.model = AutoModel`` (names ``feature_extractor.model.*``),
  ``self.weights = zeros(num_hidden_layers + 1)``; output = sum(softmax(weights)_l * hidden_l).
* RangeActivation L40-75: buffers ``min_value`` / ``max_value``; sigmoid / softplus forms.
* UniVersaExt L78-104: ``feat_proj = Sequential(Linear, LayerNorm)``, ``encoder`` (one shared
  nn.TransformerEncoder), ``metric_proj = Linear(d, len(metrics))``, ``metric2act`` ModuleDict.
* UniVersaExt.predict L131-141: encoder(feats, src_key_padding_mask) * mask, sum / lengths.
* trainer.py save_checkpoint: ``dict(model=state_dict(), optimizer=, scheduler=, update=)``.
* configs/universa-ext_wavlm-base_5metric.yaml: HyperPyYAML with !new: / !ref / !apply: tags.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")

from sqa.checkpoint import load_checkpoint, load_model  # noqa: E402
from sqa.cli import run_command  # noqa: E402
from sqa.commands.import_checkpoint import main as import_entry  # noqa: E402
from sqa.predictors.frontends import SslFrontEnd, SslFrontEndConfig  # noqa: E402

TINY = dict(
    hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
    conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8,
    num_conv_pos_embedding_groups=2, num_buckets=8, max_bucket_distance=16,
)  # fmt: skip
CONFIG_YAML = """seed: 42
sample_rate: 16000
__set_seed1: !apply:random.seed [!ref <seed>]
metrics:
    mos: {min: 1.0, max: 5.0}
    sdr: {min: -10.0}
    other: {}
model: !new:urgent2026_sqa.model.UniVersaExt
    feature_extractor: !new:urgent2026_sqa.model.SSLFeatureExtractor
        model_name: microsoft/wavlm-base-plus
        freeze: true
    encoder: !new:torch.nn.TransformerEncoder
        encoder_layer: !new:torch.nn.TransformerEncoderLayer
            d_model: 12
            nhead: 2
            dim_feedforward: 24
            dropout: 0.1
            activation: "relu"
            batch_first: True
        num_layers: 2
    metrics: !ref <metrics>
"""


def _wavlm(folder: Path, kind: str = "wavlm") -> torch.nn.Module:
    torch.manual_seed(0)
    config_class = transformers.WavLMConfig if kind == "wavlm" else transformers.HubertConfig
    settings = {k: v for k, v in TINY.items() if kind == "wavlm" or "bucket" not in k}
    model = transformers.AutoModel.from_config(config_class(**settings)).eval()
    model.save_pretrained(folder)
    return model


@pytest.mark.parametrize("kind", ["wavlm", "hubert"])
def test_ssl_front_end_equals_weighted_transformers_hidden_states(
    tmp_path: Path, kind: str
) -> None:
    reference = _wavlm(tmp_path, kind)
    front = SslFrontEnd(SslFrontEndConfig(path=str(tmp_path))).eval()
    with torch.no_grad():
        front.mix.logits.copy_(torch.randn(front.mix.logits.shape))
        wave = 0.1 * torch.randn(2, 4000)
        ours, _ = front(wave, torch.tensor([4000, 4000]))
        hidden = reference(wave, output_hidden_states=True).hidden_states
        weights = torch.softmax(front.mix.logits, 0)
        expected = sum(w * h for w, h in zip(weights, hidden, strict=True))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def _official(tmp_path: Path) -> tuple[dict, torch.nn.Module]:
    ssl = _wavlm(tmp_path / "wavlm")
    layer = torch.nn.TransformerEncoderLayer(12, 2, 24, 0.1, batch_first=True)
    encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    state = {f"feature_extractor.model.{k}": v for k, v in ssl.state_dict().items()}
    state["feature_extractor.weights"] = torch.randn(3)
    state.update({"feat_proj.0.weight": torch.randn(12, 16), "feat_proj.0.bias": torch.randn(12)})
    state.update({"feat_proj.1.weight": torch.rand(12) + 0.5, "feat_proj.1.bias": torch.randn(12)})
    state.update(
        {f"encoder.{k}": v + 0.01 * torch.randn_like(v) for k, v in encoder.state_dict().items()}
    )
    state.update({"metric_proj.weight": torch.randn(3, 12), "metric_proj.bias": torch.randn(3)})
    bounds = {
        "mos": (1.0, 5.0),
        "sdr": (-10.0, float("inf")),
        "other": (-float("inf"), float("inf")),
    }
    for name, (low, high) in bounds.items():
        state[f"metric2act.{name}.min_value"] = torch.tensor(low)
        state[f"metric2act.{name}.max_value"] = torch.tensor(high)
    encoder.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("encoder.")})
    return state, (ssl, encoder)


def _reference(
    state: dict, modules: tuple, wave: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    ssl, encoder = modules
    mask = (torch.arange(wave.shape[1]) < lengths[:, None]).long()
    hidden = torch.stack(ssl(wave, attention_mask=mask, output_hidden_states=True).hidden_states)
    feats = (
        hidden * torch.softmax(state["feature_extractor.weights"], 0)[:, None, None, None]
    ).sum(0)
    frames = ssl._get_feat_extract_output_lengths(lengths)
    feats = F.linear(feats, state["feat_proj.0.weight"], state["feat_proj.0.bias"])
    feats = F.layer_norm(feats, (12,),
                         state["feat_proj.1.weight"], state["feat_proj.1.bias"])  # fmt: skip
    valid = torch.arange(feats.shape[1])[None] < frames[:, None]
    x = encoder(feats, src_key_padding_mask=~valid) * valid[..., None]
    logits = F.linear(
        x.sum(1) / frames[:, None], state["metric_proj.weight"], state["metric_proj.bias"]
    )
    return torch.stack(
        [1 + 4 * torch.sigmoid(logits[:, 0]), -10 + F.softplus(logits[:, 1] + 10), logits[:, 2]], 1
    )


def test_track2_checkpoint_imports_with_identical_predictions(tmp_path: Path) -> None:
    state, modules = _official(tmp_path)
    weights = tmp_path / "model.pt"
    torch.save({"model": state, "optimizer": {"state": {}}, "update": 1000}, weights)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_YAML)
    output = tmp_path / "predictor.pt"
    argv = [
        "universa-ext",
        str(weights),
        str(config),
        str(tmp_path / "wavlm"),
        "--output",
        str(output),
    ]
    assert run_command("import", import_entry, argv) == 0
    report = load_checkpoint(output)["metadata"]["import"]
    assert not report["unmapped"] and not report["missing"] and len(report["ignored"]) == 6
    model = load_model(output).eval()
    wave, lengths = 0.1 * torch.randn(2, 6000), torch.tensor([6000, 4100])
    wave[1, 4100:] = 0
    with torch.no_grad():
        scores = model(wave, lengths).scores
        expected = _reference(state, modules, wave, lengths)
    torch.testing.assert_close(
        torch.stack([scores[n] for n in ("mos", "sdr", "other")], 1), expected, atol=1e-4, rtol=1e-4
    )
