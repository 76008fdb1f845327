"""Checkpoint format: round trip, manifest hashes, refusal of unknown or unsafe files, CLI."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

import pytest
import torch
from torch import nn

from sqa import checkpoint
from sqa.checkpoint import registry
from sqa.cli import run_command
from sqa.commands.checkpoint import main as checkpoint_main
from sqa.errors import CheckpointError, ConfigError, DataFormatError, SqaError

KIND = "test-tiny"


@dataclass(frozen=True)
class TinyHeadConfig:
    """Nested part of the test config."""

    widths: tuple[int, ...] = (3, 2)
    activation: str = "relu"


@dataclass(frozen=True)
class TinyConfig:
    """Config of the test model."""

    input_size: int = 4
    sample_rate: int = 16000
    head: TinyHeadConfig = field(default_factory=TinyHeadConfig)
    scale: float | None = None


class TinyModel(nn.Module):
    """A linear stack built from :class:`TinyConfig`; forward maps (B, input_size) -> (B, 1)."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        sizes = (config.input_size, *config.head.widths, 1)
        self.layers = nn.Sequential(*(nn.Linear(a, b) for a, b in itertools.pairwise(sizes)))
        self.register_buffer("mean", torch.zeros(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features) + self.mean


checkpoint.register_model(KIND, TinyConfig, TinyModel)
CONFIG = TinyConfig(input_size=4, head=TinyHeadConfig(widths=(5, 3)), scale=2)


def _trained_model() -> tuple[TinyModel, dict[str, object]]:
    """A model with non-initial weights and an optimizer-like state (int keys, tensors, lists).

    A real torch optimizer is avoided on purpose: creating the first one costs seconds of imports.
    """
    torch.manual_seed(0)
    model = TinyModel(CONFIG)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        model.mean.fill_(0.5)
    moments = {
        index: {"step": torch.tensor(3.0), "exp_avg": torch.zeros_like(parameter)}
        for index, parameter in enumerate(model.parameters())
    }
    groups = [{"lr": 0.01, "betas": (0.9, 0.999), "params": list(range(len(moments)))}]
    return model, {"state": moments, "param_groups": groups}


@pytest.fixture
def release_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkpoint folder with one release listed in its manifest as ``tiny``."""
    folder = tmp_path / "checkpoints"
    monkeypatch.setenv(checkpoint.DIRECTORY_ENVIRONMENT_VARIABLE, str(folder))
    model, _ = _trained_model()
    path = checkpoint.save_checkpoint(folder / "tiny.pt", model, CONFIG, kind=KIND)
    entry = {"file": "tiny.pt", "sha256": checkpoint.file_sha256(path), "kind": KIND}
    checkpoint.update_manifest("tiny", {**entry, "sample_rate": 16000, "description": "test"})
    return folder


def test_round_trip_restores_config_weights_and_metadata(tmp_path: Path) -> None:
    model, _ = _trained_model()
    path = checkpoint.save_checkpoint(
        tmp_path / "sub" / "model.pt", model, CONFIG, kind=KIND, metadata={"epochs": 3}
    )
    assert sorted(os.listdir(path.parent)) == ["model.pt"]  # no temporary file left behind
    payload = checkpoint.load_checkpoint(path)
    assert payload["format_version"] == checkpoint.FORMAT_VERSION
    assert payload["config"]["head"]["widths"] == [5, 3]
    loaded = checkpoint.load_model(path)
    assert not loaded.training
    assert checkpoint.config_from_dict(TinyConfig, payload["config"]) == CONFIG
    features = torch.randn(3, 4)
    assert torch.allclose(loaded(features), model(features))
    metadata = loaded.checkpoint_metadata
    assert metadata["kind"] == KIND and metadata["epochs"] == 3 and metadata["name"] is None
    assert metadata["versions"]["torch"] == str(torch.__version__)
    assert metadata["sha256"] == checkpoint.file_sha256(path)


def test_config_dict_conversion() -> None:
    data = checkpoint.config_to_dict(CONFIG)
    assert data == {
        "input_size": 4,
        "sample_rate": 16000,
        "head": {"widths": [5, 3], "activation": "relu"},
        "scale": 2,
    }
    rebuilt = checkpoint.config_from_dict(TinyConfig, data)
    assert rebuilt == CONFIG and isinstance(rebuilt.head.widths, tuple)
    assert checkpoint.config_from_dict(TinyConfig, {"input_size": 2}) == TinyConfig(input_size=2)
    with pytest.raises(ConfigError, match="unknown field.*depth"):  # sqa.configs' own error
        checkpoint.config_from_dict(TinyConfig, {"depth": 2})


def test_manifest_name_loads_with_hash_check(release_dir: Path) -> None:
    model = checkpoint.load_model("tiny")
    assert model.checkpoint_metadata["name"] == "tiny"
    assert checkpoint.read_manifest()["tiny"]["sample_rate"] == 16000
    with pytest.raises(CheckpointError, match="known names: tiny"):
        checkpoint.load_model("not-there")


def test_sha256_mismatch_names_both_digests(release_dir: Path) -> None:
    expected = checkpoint.read_manifest()["tiny"]["sha256"]
    with open(release_dir / "tiny.pt", "ab") as stream:
        stream.write(b"tampered")
    actual = checkpoint.file_sha256(release_dir / "tiny.pt")
    for reference in ("tiny", release_dir / "tiny.pt"):  # a listed path is checked too
        with pytest.raises(CheckpointError, match="sha256 mismatch") as caught:
            checkpoint.load_model(reference)
        assert expected in str(caught.value) and actual in str(caught.value)


def _save_raw(path: Path, **changes: object) -> Path:
    model, _ = _trained_model()
    payload = {
        "format_version": checkpoint.FORMAT_VERSION,
        "kind": KIND,
        "config": checkpoint.config_to_dict(CONFIG),
        "state_dict": model.state_dict(),
        "metadata": {},
        **changes,
    }
    torch.save(payload, path)
    return path


def test_unknown_format_version_and_kind_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="format_version 99.*reads format_version 1"):
        checkpoint.load_checkpoint(_save_raw(tmp_path / "future.pt", format_version=99))
    with pytest.raises(CheckpointError, match=f"unknown model kind 'mystery'.*{KIND}"):
        checkpoint.load_model(_save_raw(tmp_path / "mystery.pt", kind="mystery"))
    with pytest.raises(CheckpointError, match="not an sqa checkpoint"):
        torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
        checkpoint.load_checkpoint(tmp_path / "plain.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        checkpoint.load_checkpoint(tmp_path / "garbage.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        state = {"layers.0.weight": torch.zeros(1)}
        checkpoint.load_model(_save_raw(tmp_path / "wrong.pt", state_dict=state))
    with pytest.raises(CheckpointError, match="unknown model kind"):
        checkpoint.save_checkpoint(tmp_path / "x.pt", TinyModel(CONFIG), CONFIG, kind="mystery")


class _RunsCode:
    """Unpickling this would open (create) a file: weights-only loading must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = _save_raw(tmp_path / "unsafe.pt", metadata={"payload": _RunsCode(marker)})
    with pytest.raises(CheckpointError, match="refusing to load"):
        checkpoint.load_model(path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="cannot store"):
        checkpoint.save_checkpoint(
            tmp_path / "bad.pt", TinyModel(CONFIG), CONFIG, kind=KIND, metadata={"x": object()}
        )


def test_export_strips_training_state(tmp_path: Path, release_dir: Path) -> None:
    model, optimizer_state = _trained_model()
    training = checkpoint.save_checkpoint(
        tmp_path / "last.pt",
        model,
        CONFIG,
        kind=KIND,
        training_state={"optimizer": optimizer_state, "step": 7},
    )
    state = checkpoint.load_checkpoint(training)["training_state"]
    assert state["step"] == 7 and state["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert torch.allclose(state["optimizer"]["state"][0]["step"], torch.tensor(3.0))
    release = checkpoint.export_release(training, release_dir / "exported.pt", name="exported")
    payload = checkpoint.load_checkpoint(release)
    assert "training_state" not in payload
    assert payload["metadata"]["exported_from"] == "last.pt"
    assert payload["metadata"]["source_sha256"] == checkpoint.file_sha256(training)
    entry = checkpoint.read_manifest()["exported"]
    assert entry["file"] == "exported.pt" and entry["sample_rate"] == 16000
    assert entry["sha256"] == checkpoint.file_sha256(release)
    features = torch.randn(2, 4)
    assert torch.allclose(checkpoint.load_model("exported")(features), model(features))
    with pytest.raises(SqaError, match="--force"):
        checkpoint.export_release(training, release)
    checkpoint.export_release(training, release, force=True)


def test_models_are_discovered_through_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_file = tmp_path / "discovered_test_models.py"
    module_file.write_text(
        "from torch import nn\n"
        "from sqa.checkpoint import register_model\n"
        "class Config(dict):\n    pass\n"
        "class Model(nn.Identity):\n    pass\n"
        "register_model('test-discovered', Config, Model)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [
        importlib_metadata.EntryPoint("good", "discovered_test_models", "sqa.models"),
        importlib_metadata.EntryPoint("broken", "no_such_module_xyz", "sqa.models"),
    ]
    monkeypatch.setattr(registry.importlib_metadata, "entry_points", lambda group: points)
    monkeypatch.setattr(registry, "_DISCOVERY", {"done": False, "failures": {}})
    assert "test-discovered" in checkpoint.registered_kinds()
    with pytest.raises(CheckpointError, match="failed to import: no_such_module_xyz"):
        checkpoint.model_classes("still-unknown")


def test_repository_manifest_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(checkpoint.DIRECTORY_ENVIRONMENT_VARIABLE, raising=False)
    repository = Path(__file__).resolve().parents[1]
    assert checkpoint.checkpoint_dir() == repository / "checkpoints"
    assert (repository / "checkpoints" / checkpoint.MANIFEST_NAME).is_file()
    manifest = checkpoint.read_manifest()
    for name, entry in manifest.items():
        assert len(entry["sha256"]) == 64, name
    (tmp_path / "manifest.json").write_text(json.dumps({"x": {"file": "x.pt"}}))
    with pytest.raises(DataFormatError, match="'x' lacks sha256, kind"):
        checkpoint.read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        checkpoint.read_manifest(tmp_path)


def test_half_precision_export_is_smaller_and_loads_into_float32(
    tmp_path: Path, release_dir: Path
) -> None:
    model, _ = _trained_model()
    training = checkpoint.save_checkpoint(tmp_path / "last.pt", model, CONFIG, kind=KIND)
    full = checkpoint.export_release(training, release_dir / "full.pt")
    half = checkpoint.export_release(training, release_dir / "half.pt", half=True)
    payload = checkpoint.load_checkpoint(half)
    assert payload["metadata"]["storage"] == "float16"
    assert all(value.dtype != torch.float32 for value in payload["state_dict"].values())
    assert half.stat().st_size < full.stat().st_size
    loaded = checkpoint.load_model(half)
    assert all(parameter.dtype == torch.float32 for parameter in loaded.parameters())
    features = torch.randn(2, 4)
    torch.testing.assert_close(loaded(features), model(features), atol=5e-3, rtol=5e-3)


def test_installed_checkpoint_folder_is_used_when_the_source_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqa.checkpoint import manifest

    monkeypatch.delenv(checkpoint.DIRECTORY_ENVIRONMENT_VARIABLE, raising=False)
    installed = tmp_path / "share" / "sqa-suite" / "checkpoints"
    installed.mkdir(parents=True)
    (installed / "manifest.json").write_text("{}")
    monkeypatch.setattr(manifest.sys, "prefix", str(tmp_path))
    source = Path(manifest.__file__).resolve().parents[2] / "checkpoints"
    expected = source if (source / "manifest.json").is_file() else installed
    assert manifest.checkpoint_dir() == expected
    monkeypatch.setattr(
        manifest, "__file__", str(tmp_path / "site" / "sqa" / "checkpoint" / "m.py")
    )
    assert manifest.checkpoint_dir() == installed


def test_cli_info_verify_and_export(
    tmp_path: Path, release_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert checkpoint_main(["info", "tiny"]) == 0
    output = capsys.readouterr().out
    assert f"kind: {KIND}" in output and "name: tiny" in output and "widths" in output
    assert checkpoint_main(["info", "--json", str(release_dir / "tiny.pt")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["name"] == "tiny" and summary["training_state"] is False
    assert checkpoint_main(["verify"]) == 0
    assert "ok    tiny" in capsys.readouterr().out
    model, _ = _trained_model()
    training = checkpoint.save_checkpoint(
        tmp_path / "t.pt", model, CONFIG, kind=KIND, training_state={"step": 1}
    )
    release = tmp_path / "r.pt"
    assert checkpoint_main(["export", str(training), str(release)]) == 0
    assert run_command("checkpoint", checkpoint_main, ["export", str(training), str(release)]) == 2
    assert "--force" in capsys.readouterr().err
    assert checkpoint_main(["export", str(training), str(release), "--force"]) == 0
    checkpoint.update_manifest("broken", {"file": "gone.pt", "sha256": "0" * 64, "kind": KIND})
    assert checkpoint_main(["verify"]) == 1
    assert "FAIL  broken: file" in capsys.readouterr().out
    assert run_command("checkpoint", checkpoint_main, ["info", "nothing-here"]) == 2
