"""`sqa import espnet-bsrnn`: the ESPnet-layout fixture made by benchmarks/interop/espnet_env.sh
(ESPnet 202511's own STFTEncoder / BSRNNSeparator / STFTDecoder, 2 channels, 1 layer, random
weights) imports completely and reproduces ESPnet's saved 16 kHz output; the full 16/48 kHz check
runs the script itself when the side environment exists."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sqa.checkpoint import load_checkpoint, load_model
from sqa.cli import run_command
from sqa.commands.import_checkpoint import main as import_entry

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "espnet_bsrnn_tiny"
ESPNET_ENV = Path(os.environ.get("ESPNET_ENV", "/tmp/espnet-env"))


def _sources(tmp_path: Path) -> list[str]:
    weights = tmp_path / "model.pth"
    weights.write_bytes(gzip.decompress((FIXTURE / "model.pth.gz").read_bytes()))
    return [str(weights), str(FIXTURE / "config.yaml")]


def test_espnet_layout_maps_every_tensor_and_matches_espnet(tmp_path: Path) -> None:
    output = tmp_path / "bsrnn.pt"
    argv = ["espnet-bsrnn", *_sources(tmp_path), "--output", str(output)]
    assert run_command("import", import_entry, argv) == 0
    report = load_checkpoint(output)["metadata"]["import"]
    assert not report["unmapped"] and not report["missing"]
    assert report["mapping"]["separator.bsrnn.rnn_freq.0.weight_hh_l0_reverse"] == (
        "blocks.0.band_lstm.weight_hh_l0_reverse"
    )
    model = load_model(output).eval()
    assert model.config.input_normalisation == "std" and model.config.normalise_input
    reference = torch.load(FIXTURE / "reference.pt", weights_only=True)
    with torch.no_grad():
        ours = model(reference["input_16000"], sample_rate=16000)
    assert float((ours - reference["output_16000"]).abs().max()) <= 1e-4


def test_unsupported_espnet_settings_are_refused(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(
        (FIXTURE / "config.yaml").read_text().replace("norm_type: GN", "norm_type: cLN")
    )
    code = run_command(
        "import",
        import_entry,
        ["espnet-bsrnn", sources[0], str(config), "--output", str(tmp_path / "o.pt")],
    )
    assert code == 2 and not (tmp_path / "o.pt").exists()


@pytest.mark.slow
@pytest.mark.skipif(
    not (ESPNET_ENV / "bin" / "python").exists(),
    reason=f"no ESPnet side environment at {ESPNET_ENV} (bash benchmarks/interop/espnet_env.sh)",
)
def test_espnet_side_environment_parity(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "interop" / "espnet_env.sh"), str(tmp_path)],
        env={**os.environ, "SQA_PYTHON": sys.executable},
        capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "parity OK" in result.stdout
