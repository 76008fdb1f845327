"""``sqa export onnx`` and ``--backend onnx``: graphs match PyTorch on tiny models of every kind.

Tiny random models keep this fast; the shipped models are exported in the slow check at the end
and in ``benchmarks/onnx_speedup.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

from rankers.cached import MODEL_KIND as CACHED_KIND
from rankers.cached import CachedPairwiseRanker, CachedRankerConfig
from se_finetune.bsrnn import BSRNN, BSRNNConfig
from sqa.audio import load_audio, save_audio
from sqa.checkpoint import load_model, save_checkpoint
from sqa.cli import main as sqa_main
from sqa.export.onnx import export_onnx
from sqa.export.runtime import open_graph
from sqa.export.transformer import traceable_transformers
from sqa.predictors.model import MODEL_KIND, UniVersa, UniVersaConfig
from sqa.predictors.trunk import MaskedEncoder, TrunkConfig
from sqa.synthetic import speech_like

TRUNK = TrunkConfig(num_layers=1, num_heads=2, d_model=16, ffn_dim=32, dropout=0.1)
RANKER = CachedRankerConfig(
    n_mels=32, stem_channels=8, widths=(8, 8, 8, 8), embedding_size=16, head_hidden=16
)
RESTORER = BSRNNConfig(sample_rate=16000, num_channels=8, num_layers=1, mask_hidden_factor=1)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models")
    predictor = UniVersa(UniVersaConfig(front_end="mel", trunk=TRUNK, metrics=("mos", "sdr")))
    return {
        "predictor": save_checkpoint(folder / "p.pt", predictor, predictor.config, kind=MODEL_KIND),
        "ranker": save_checkpoint(
            folder / "r.pt", CachedPairwiseRanker(RANKER), RANKER, kind=CACHED_KIND
        ),
        "restorer": save_checkpoint(folder / "b.pt", BSRNN(RESTORER), RESTORER, kind="bsrnn"),
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for system, noise in (("clean", 0.0), ("noisy", 0.05), ("worse", 0.15)):
        for index, seconds in enumerate((0.7, 1.3)):
            signal = speech_like(seconds, 16000, seed=index)
            signal = signal + noise * np.random.default_rng(index).standard_normal(signal.size)
            save_audio(root / system / f"utt{index}.wav", signal.astype(np.float32), 16000)
    return root


@pytest.mark.parametrize("name", ["predictor", "ranker", "restorer"])
def test_export_verifies_and_records_metadata(
    name: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    model = load_model(checkpoints[name])
    kind = model.checkpoint_metadata["kind"]
    reports = export_onnx(model, kind, tmp_path / "m.onnx")
    assert [report.path.name for report in reports] == (
        ["m.onnx", "m.pair.onnx"] if name == "ranker" else ["m.onnx"]
    )
    for report in reports:
        assert report.max_difference <= 1e-4
        if report.path.name == "m.onnx":  # waveform graphs are also run on speech-like audio
            assert report.speech_difference <= 1e-4
        else:
            assert np.isnan(report.speech_difference)
        graph = open_graph(report.path)
        assert graph.kind == kind
        assert graph.metadata["source_sha256"] == model.checkpoint_metadata["sha256"]
        assert json.loads(graph.metadata["config"]) == json.loads(json.dumps(graph.config))
    # The export leaves the eager model as it was: eval mode (no dropout), same outputs.
    assert not any(module.training for module in model.modules())


def test_traceable_encoder_matches_eager_and_is_undone() -> None:
    encoder = MaskedEncoder(8, TRUNK).eval()
    frames = torch.randn(3, 11, 8)
    valid = torch.arange(11)[None] < torch.tensor([11, 6, 1])[:, None]
    with torch.no_grad():
        expected = encoder(frames, valid)
        with traceable_transformers(encoder):
            patched = encoder(frames, valid)
        after = encoder(frames, valid)
    assert torch.allclose(patched, expected, atol=1e-5)
    assert torch.equal(after, expected)
    assert "forward" not in vars(encoder.encoder.layers[0])


def test_backends_agree_on_predict_rank_and_enhance(
    checkpoints: dict[str, Path], corpus: Path, tmp_path: Path
) -> None:
    graphs = {}
    for name, checkpoint in checkpoints.items():
        graphs[name] = tmp_path / f"{name}.onnx"
        assert sqa_main(["export", "onnx", str(checkpoint), "--output", str(graphs[name])]) == 0
    for backend, predictor in (("torch", checkpoints["predictor"]), ("onnx", graphs["predictor"])):
        output = str(tmp_path / f"{backend}.jsonl")
        arguments = ["--checkpoint", str(predictor), "--root", str(corpus), "--output", output]
        assert sqa_main(["predict", *arguments]) == 0
    torch_rows, onnx_rows = (
        [json.loads(line) for line in (tmp_path / f"{backend}.jsonl").read_text().splitlines()]
        for backend in ("torch", "onnx")
    )
    assert len(torch_rows) == len(onnx_rows) == 6
    for ours, theirs in zip(torch_rows, onnx_rows, strict=True):
        for metric, value in ours["metrics"].items():
            assert abs(value - theirs["metrics"][metric]) <= 1e-4
    for backend, ranker in (("torch", checkpoints["ranker"]), ("onnx", graphs["ranker"])):
        output = tmp_path / f"rank-{backend}.csv"
        flags = ["--ranker", str(ranker), "--backend", backend, "--bootstrap", "20"]
        assert sqa_main(["rank", "--root", str(corpus), *flags, "--output", str(output)]) == 0
    first, second = (
        (tmp_path / f"rank-{backend}.csv").read_text().splitlines() for backend in ("torch", "onnx")
    )
    assert [row.split(",")[1] for row in first] == [row.split(",")[1] for row in second]
    for backend, restorer in (("torch", checkpoints["restorer"]), ("onnx", graphs["restorer"])):
        arguments = ["--model", str(restorer), "--input", str(corpus / "noisy")]
        assert sqa_main(["enhance", *arguments, "--output", str(tmp_path / backend)]) == 0
    for path in sorted((tmp_path / "torch").glob("*.wav")):
        eager, rate = load_audio(path)
        exported, _ = load_audio(tmp_path / "onnx" / path.name)
        assert rate == 16000 and np.abs(eager - exported).max() <= 2 / 32768  # one 16-bit step


def test_clear_errors(checkpoints: dict[str, Path], corpus: Path, tmp_path: Path, capsys) -> None:
    graph = tmp_path / "r.onnx"
    assert sqa_main(["export", "onnx", str(checkpoints["ranker"]), "--output", str(graph)]) == 0
    assert sqa_main(["export", "onnx", str(checkpoints["ranker"]), "--output", str(graph)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    (tmp_path / "r.pair.onnx").unlink()
    output = str(tmp_path / "x.csv")
    code = sqa_main(["rank", "--root", str(corpus), "--ranker", str(graph), "--output", output])
    assert code != 0 and "r.pair.onnx is missing" in capsys.readouterr().err
    predictions = str(tmp_path / "p.jsonl")
    wrong = ["--checkpoint", str(graph), "--dir", str(corpus / "clean"), "--output", predictions]
    assert sqa_main(["predict", *wrong]) != 0
    assert "holds a 'urgent_pk_cached' model" in capsys.readouterr().err
    assert sqa_main(["export", "onnx", str(checkpoints["ranker"]), "--output", "x.pt"]) == 2
    assert "must end in .onnx" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["predictor-default", "ranker-accurate", "restorer-default"])
def test_shipped_models_export(name: str, tmp_path: Path) -> None:
    model = load_model(name)
    for report in export_onnx(model, model.checkpoint_metadata["kind"], tmp_path / "m.onnx"):
        assert report.max_difference <= 1e-4
