"""`sqa import urgent-pk`: a synthetic Lightning checkpoint with the official names and layout.

Upstream facts used (urgent-challenge/URGENT-PK, commit a51d036 for urgentpk/urgentpk_model.py,
eb44ff6 for urgentpk/resnet.py):
* urgentpk_model.py L86-88, AbModel.__init__: encoder = Sequential(MelSpectrogram(sample_rate=16000,
  n_fft=320, win_length=160, n_mels=120), AmplitudeToDB()) -> buffers
  ``encoder.0.spectrogram.window`` and ``encoder.0.mel_scale.fb``; hop = torchaudio's default
  win_length // 2 = 80.
* urgentpk_model.py, AbTestModel.__init__: ``self.nn = torch.nn.Linear(100, 100)`` (unused) and
  ``self.model = AbModel(cfg)``; save_hyperparameters() stores ``cfg`` (a Config object).
* urgentpk_backbone.py, class resnet34: ``self.resnet = ResNet34(input_channels=2, m_channels=32,
  feat_dim=feat_dim, emb_dim=3, dropout=0.3)`` -> names ``model.model.resnet.*``.
* resnet.py L13-24 BasicBlock: conv1/bn1/conv2/bn2 (3x3, no bias), shortcut = Sequential(conv 1x1,
  BN) when the stride or width changes; L27-31 forward relu(bn1(conv1)) -> dropout -> bn2(conv2)
  + shortcut -> relu.
* resnet.py L70-77 ResNet: conv1/bn1 stem, layer1..4 (stride 1, 2, 2, 2; widths m, 2m, 4m, 8m),
  ``embedding = Linear(ceil(feat_dim / 8) * m * 16, emb_dim)``.
* resnet.py L95-98 forward: mean over the last axis, ``sqrt(var(out, dim=-1) + 1e-10)`` (unbiased),
  cat(flatten(mean), flatten(std)).
* urgentpk_model.py, AbModel.forward: features permuted to (B, 2, L, N) then resnet34.forward
  permutes back to (B, 2, N, L); output[:, 0] is the logit, [:, 1:3] the two MOS.
"""

from __future__ import annotations

import math
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sqa.checkpoint import load_checkpoint, load_model
from sqa.checkpoint.safe_unpickle import read_untrusted
from sqa.cli import run_command
from sqa.commands.import_checkpoint import main as _import_entry
from sqa.errors import CheckpointError
from sqa.mel import htk_mel_filterbank


def import_main(argv: list[str]) -> int:
    """``sqa import ARGV`` as the console runs it (errors -> one line, exit code 2)."""
    return run_command("import", _import_entry, argv)


class Config:
    """Stands for urgentpk.urgentpk_model.Config (pickled by save_hyperparameters)."""

    def __init__(self, backbone: str) -> None:
        self.encoder = "mel"
        self.backbone = backbone
        self.learning_rate = 1e-4


def _bn(generator: torch.Generator, prefix: str, channels: int) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": 1 + 0.1 * torch.randn(channels, generator=generator),
        f"{prefix}.bias": 0.1 * torch.randn(channels, generator=generator),
        f"{prefix}.running_mean": 0.1 * torch.randn(channels, generator=generator),
        f"{prefix}.running_var": 1 + torch.rand(channels, generator=generator),
        f"{prefix}.num_batches_tracked": torch.tensor(7),
    }


def official_state(channels: int = 32, counts: tuple[int, ...] = (3, 4, 6, 3)) -> OrderedDict:
    generator = torch.Generator().manual_seed(0)

    def conv(out: int, inp: int, size: int) -> torch.Tensor:
        return torch.randn(out, inp, size, size, generator=generator) / math.sqrt(inp * size**2)

    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    state["nn.weight"], state["nn.bias"] = torch.randn(100, 100), torch.randn(100)
    state["model.encoder.0.spectrogram.window"] = torch.hann_window(160)
    state["model.encoder.0.mel_scale.fb"] = htk_mel_filterbank(161, 120, 16000)
    base = "model.model.resnet"
    state[f"{base}.conv1.weight"] = conv(channels, 2, 3)
    state.update(_bn(generator, f"{base}.bn1", channels))
    planes_in = channels
    for stage, (count, stride) in enumerate(zip(counts, (1, 2, 2, 2), strict=True), start=1):
        planes = channels * 2 ** (stage - 1)
        for block in range(count):
            name = f"{base}.layer{stage}.{block}"
            state[f"{name}.conv1.weight"] = conv(planes, planes_in, 3)
            state.update(_bn(generator, f"{name}.bn1", planes))
            state[f"{name}.conv2.weight"] = conv(planes, planes, 3)
            state.update(_bn(generator, f"{name}.bn2", planes))
            if block == 0 and (stride != 1 or planes_in != planes):
                state[f"{name}.shortcut.0.weight"] = conv(planes, planes_in, 1)
                state.update(_bn(generator, f"{name}.shortcut.1", planes))
            planes_in = planes
    features = math.ceil(120 / 8) * channels * 16
    state[f"{base}.embedding.weight"] = torch.randn(3, features, generator=generator) * 0.01
    state[f"{base}.embedding.bias"] = torch.randn(3, generator=generator)
    return state


def lightning_file(path: Path, state: OrderedDict) -> Path:
    blocks = sum(name.endswith(".conv1.weight") and ".layer" in name for name in state)
    backbone = "resnet34" if blocks == 16 else "resnet18"
    torch.save(
        {
            "epoch": 3,
            "global_step": 1000,
            "pytorch-lightning_version": "2.1.0",
            "state_dict": state,
            "loops": {"fit_loop": {"state_dict": {}}},
            "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": {"best_model_score": None}},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4}]}],
            "lr_schedulers": [{"step_size": 1, "gamma": 0.85}],
            "hparams_name": "kwargs",
            "hyper_parameters": {"cfg": Config(backbone)},
        },
        path,
    )
    return path


def reference_forward(
    state: OrderedDict, wave_a: torch.Tensor, wave_b: torch.Tensor
) -> torch.Tensor:
    """The official computation assembled by hand from the same tensors (B, 3)."""
    audio = torch.stack([wave_a, wave_b], dim=1).reshape(-1, wave_a.shape[-1])
    spectrum = torch.stft(audio, 320, 80, 160, torch.hann_window(160), return_complex=True)
    mel = state["model.encoder.0.mel_scale.fb"].T @ spectrum.abs().square()
    features = (10 * torch.log10(mel.clamp_min(1e-10))).reshape(wave_a.shape[0], 2, 120, -1)

    def bn(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.batch_norm(
            x, state[f"{name}.running_mean"], state[f"{name}.running_var"],
            state[f"{name}.weight"], state[f"{name}.bias"], training=False, eps=1e-5,
        )  # fmt: skip

    base = "model.model.resnet"
    x = F.relu(bn(F.conv2d(features, state[f"{base}.conv1.weight"], padding=1), f"{base}.bn1"))
    for stage, stride in zip(range(1, 5), (1, 2, 2, 2), strict=True):
        block = 0
        while f"{base}.layer{stage}.{block}.conv1.weight" in state:
            name, step = f"{base}.layer{stage}.{block}", stride if block == 0 else 1
            out = F.relu(
                bn(
                    F.conv2d(x, state[f"{name}.conv1.weight"], stride=step, padding=1),
                    f"{name}.bn1",
                )
            )
            out = bn(F.conv2d(out, state[f"{name}.conv2.weight"], padding=1), f"{name}.bn2")
            if f"{name}.shortcut.0.weight" in state:
                x = bn(
                    F.conv2d(x, state[f"{name}.shortcut.0.weight"], stride=step),
                    f"{name}.shortcut.1",
                )
            x, block = F.relu(out + x), block + 1
    pooled = torch.cat([x.mean(-1).flatten(1), torch.sqrt(x.var(-1) + 1e-10).flatten(1)], dim=1)
    return F.linear(pooled, state[f"{base}.embedding.weight"], state[f"{base}.embedding.bias"])


def test_official_urgentpk_checkpoint_imports_with_identical_outputs(tmp_path: Path) -> None:
    state = official_state()
    source = lightning_file(tmp_path / "epoch=3.ckpt", state)
    output = tmp_path / "ranker.pt"
    assert import_main(["urgent-pk", str(source), "--output", str(output)]) == 0
    payload = load_checkpoint(output)
    report = payload["metadata"]["import"]
    assert (
        payload["metadata"]["sources"][0]["sha256"]
        == __import__("hashlib").sha256(source.read_bytes()).hexdigest()
    )
    assert not report["unmapped"] and not report["missing"]
    assert set(report["ignored"]) == {
        "nn.weight", "nn.bias", "model.encoder.0.spectrogram.window", "model.encoder.0.mel_scale.fb"
    }  # fmt: skip
    model = load_model(output).eval()
    generator = torch.Generator().manual_seed(1)
    wave_a, wave_b = 0.1 * torch.randn(2, 2, 4000, generator=generator)
    with torch.no_grad():
        ours = model(wave_a, wave_b)
        expected = reference_forward(state, wave_a, wave_b)
    torch.testing.assert_close(ours.logit, expected[:, 0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        torch.stack([ours.mos_a, ours.mos_b], 1), expected[:, 1:], atol=1e-4, rtol=1e-4
    )


def test_missing_and_misshaped_tensors_are_reported(tmp_path: Path) -> None:
    state = official_state(channels=4, counts=(2, 2, 2, 2))
    del state["model.model.resnet.layer2.0.bn1.running_var"]
    source = lightning_file(tmp_path / "partial.ckpt", state)
    output = tmp_path / "out.pt"
    assert import_main(["urgent-pk", str(source), "--output", str(output)]) == 2
    assert not output.exists()
    assert import_main(["urgent-pk", str(source), "--output", str(output), "--allow-partial"]) == 0
    report = load_checkpoint(output)["metadata"]["import"]
    assert report["missing"] == ["trunk.stages.1.0.bn1.running_var"]
    state = official_state(channels=4, counts=(2, 2, 2, 2))
    state["model.encoder.0.mel_scale.fb"] = state["model.encoder.0.mel_scale.fb"] * 2
    lightning_file(source, state)
    with pytest.raises(CheckpointError, match="mel settings"):
        from rankers.official_import import import_urgent_pk

        import_urgent_pk([source], False)


class Malicious:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2])
def test_a_checkpoint_with_a_malicious_reduce_runs_nothing(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "marker"
    state = official_state(channels=4, counts=(2, 2, 2, 2))
    payload = {"state_dict": state, "hyper_parameters": {"cfg": Malicious(marker)}}
    source = tmp_path / "evil.ckpt"
    torch.save(payload, source)
    assert import_main(["urgent-pk", str(source), "--output", str(tmp_path / "o.pt")]) == 2
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps({"cfg": Malicious(marker), "n": [1, 2.0]}, protocol=protocol))
    with pytest.raises(CheckpointError, match="refusing to call posix.system"):
        read_untrusted(plain)
    assert not marker.exists()
    assert not (tmp_path / "o.pt").exists()


def test_unknown_objects_become_plain_dicts(tmp_path: Path) -> None:
    source = lightning_file(tmp_path / "x.ckpt", official_state(channels=4, counts=(2, 2, 2, 2)))
    payload = read_untrusted(source)
    assert type(payload["hyper_parameters"]["cfg"]) is dict
    assert payload["hyper_parameters"]["cfg"]["backbone"] == "resnet18"
    assert payload["hyper_parameters"]["cfg"]["__class__"].endswith("Config")
