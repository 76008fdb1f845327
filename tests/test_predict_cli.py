"""``sqa predict`` and ``sqa evaluate`` end to end on a tiny random predictor."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch

from sqa.audio import save_audio
from sqa.checkpoint import file_sha256, save_checkpoint, update_manifest
from sqa.cli import main as sqa_main
from sqa.data import write_track2_jsonl
from sqa.data.records import AudioRecord
from sqa.fileio import read_rows
from sqa.predictors import MODEL_KIND, TrunkConfig, UniVersa, UniVersaConfig
from sqa.synthetic import speech_like

TINY = TrunkConfig(num_layers=1, num_heads=2, d_model=16, ffn_dim=32, dropout=0.0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = UniVersa(UniVersaConfig(front_end="mel", trunk=TINY, metrics=("mos", "pesq"))).eval()
    folder = tmp_path_factory.mktemp("model")
    return save_checkpoint(folder / "tiny.pt", model, model.config, kind=MODEL_KIND)


def _audio_folder(root: Path) -> Path:
    folder = root / "sysA"
    for index, duration in enumerate([0.4, 0.9, 0.6]):
        save_audio(folder / f"utt{index}.wav", speech_like(duration, 8000, seed=index), 8000)
    (folder / "broken.wav").write_text("not audio")
    save_audio(folder / "silent.wav", np.zeros(8000, dtype=np.float32), 8000)
    return folder


def test_predict_folder_skips_bad_files_and_writes_scp(tmp_path: Path, checkpoint: Path, capsys):
    folder = _audio_folder(tmp_path)
    output = tmp_path / "preds.jsonl"
    arguments = ["predict", "--checkpoint", str(checkpoint), "--dir", str(folder), "--no-progress"]
    code = sqa_main([*arguments, "--output", str(output), "--scp-dir", str(tmp_path / "scp")])
    assert code == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["sample_id"] for row in rows] == ["utt0", "utt1", "utt2"]
    assert all(
        row["system_id"] == "sysA" and set(row["metrics"]) == {"mos", "pesq"} for row in rows
    )
    assert all(1.0 <= row["metrics"]["mos"] <= 5.0 for row in rows)
    errors = capsys.readouterr().err
    assert "broken" in errors and "silent" in errors and "2 skipped" in errors
    scp = (tmp_path / "scp" / "mos.scp").read_text().split()
    assert scp[0] == "utt0" and float(scp[1]) == pytest.approx(rows[0]["metrics"]["mos"], abs=1e-6)
    # Same predictions whatever the batching (padding is masked).
    again = tmp_path / "again.csv"
    assert sqa_main([*arguments, "--output", str(again), "--max-batch-size", "1"]) == 0
    single = {row["sample_id"]: float(row["mos"]) for row in read_rows(again)}
    for row in rows:
        assert single[row["sample_id"]] == pytest.approx(row["metrics"]["mos"], abs=1e-5)
    assert sqa_main([*arguments, "--output", str(output)]) == 2  # refuses to overwrite
    assert "exists" in capsys.readouterr().err


def test_predict_from_data_jsonl_subset_of_heads(tmp_path: Path, checkpoint: Path, capsys):
    folder = _audio_folder(tmp_path)
    records = [AudioRecord(f"s{i}", "sysA", str(folder / f"utt{i}.wav")) for i in range(3)]
    data = write_track2_jsonl(tmp_path / "data.jsonl", records)
    output = tmp_path / "preds.jsonl"
    command = ["predict", "--checkpoint", str(checkpoint), "--data", str(data), "--no-progress"]
    assert sqa_main([*command, "--output", str(output), "--metrics", "mos"]) == 0
    assert all(
        set(json.loads(line)["metrics"]) == {"mos"} for line in output.read_text().splitlines()
    )
    assert sqa_main([*command, "--output", str(tmp_path / "x.jsonl"), "--metrics", "utmos"]) == 2
    assert "available: mos, pesq" in capsys.readouterr().err


def test_predict_uses_the_installed_default_predictor(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    folder = _audio_folder(tmp_path)
    (tmp_path / "no_release").mkdir()
    monkeypatch.setenv("SQA_CHECKPOINT_DIR", str(tmp_path / "no_release"))
    output = tmp_path / "preds.jsonl"
    command = ["predict", "--dir", str(folder), "--no-progress", "--output", str(output)]
    assert sqa_main(command) == 2
    error = capsys.readouterr().err.strip()
    assert "no default predictor ('predictor-default') is installed" in error
    assert len(error.splitlines()) == 1 and not output.exists()
    release = tmp_path / "release"
    release.mkdir()
    (release / "predictor-default.pt").write_bytes(checkpoint.read_bytes())
    entry = {"file": "predictor-default.pt", "sha256": file_sha256(checkpoint), "kind": MODEL_KIND}
    update_manifest("predictor-default", entry, release)
    monkeypatch.setenv("SQA_CHECKPOINT_DIR", str(release))
    assert sqa_main(command) == 0
    assert "model predictor-default (the installed default" in capsys.readouterr().err
    assert len(output.read_text().splitlines()) == 3


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_evaluate_matches_scipy_on_hand_made_case(tmp_path: Path):
    predicted = [3.1, 2.0, 4.4, 1.7, 3.9, 2.5]
    labels = [3.0, 2.5, 4.0, 1.5, 4.5, 2.0]
    systems = ["a", "a", "b", "b", "c", "c"]
    refs = [
        AudioRecord(f"u{i}", s, f"/nowhere/{i}.wav", metrics={"mos": y})
        for i, (s, y) in enumerate(zip(systems, labels, strict=True))
    ]
    reference = write_track2_jsonl(tmp_path / "ref.jsonl", refs)
    prediction = _write_jsonl(
        tmp_path / "pred.jsonl",
        [
            {"sample_id": f"u{i}", "system_id": s, "metrics": {"mos": p}}
            for i, (s, p) in enumerate(zip(systems, predicted, strict=True))
        ],
    )
    report = tmp_path / "report.json"
    assert (
        sqa_main(
            [
                "evaluate",
                "--pred",
                str(prediction),
                "--ref",
                str(reference),
                "--output",
                str(report),
            ]
        )
        == 0
    )
    result = json.loads(report.read_text())["metrics"]["mos"]
    p, y = np.array(predicted), np.array(labels)
    assert result["utt_mse"] == pytest.approx(np.mean((p - y) ** 2))
    assert result["utt_lcc"] == pytest.approx(scipy.stats.pearsonr(p, y).statistic)
    assert result["utt_srcc"] == pytest.approx(scipy.stats.spearmanr(p, y).statistic)
    assert result["utt_ktau"] == pytest.approx(scipy.stats.kendalltau(p, y).statistic)
    system_p, system_y = p.reshape(3, 2).mean(axis=1), y.reshape(3, 2).mean(axis=1)
    assert result["sys_mse"] == pytest.approx(np.mean((system_p - system_y) ** 2))
    assert result["sys_srcc"] == pytest.approx(scipy.stats.spearmanr(system_p, system_y).statistic)
    assert result["sys_lcc"] == pytest.approx(scipy.stats.pearsonr(system_p, system_y).statistic)
    assert result["count"] == 6 and not math.isnan(result["sys_ktau"])


def test_evaluate_rejects_orphan_predictions_and_reports_missing_ones(tmp_path: Path, capsys):
    refs = [AudioRecord(f"u{i}", "a", f"/x/{i}.wav", metrics={"mos": float(i)}) for i in range(4)]
    reference = write_track2_jsonl(tmp_path / "ref.jsonl", refs)
    rows = [{"sample_id": f"u{i}", "system_id": "a", "metrics": {"mos": i + 0.5}} for i in range(3)]
    partial = _write_jsonl(tmp_path / "partial.jsonl", rows)
    assert sqa_main(["evaluate", "--pred", str(partial), "--ref", str(reference)]) == 0
    assert "1 references have no prediction: a/u3" in capsys.readouterr().err
    orphan = _write_jsonl(
        tmp_path / "orphan.jsonl",
        [*rows, {"sample_id": "zz", "system_id": "a", "metrics": {"mos": 1.0}}],
    )
    assert sqa_main(["evaluate", "--pred", str(orphan), "--ref", str(reference)]) == 2
    assert "1 predictions have no reference: a/zz" in capsys.readouterr().err
