"""``sqa rank`` and ``sqa train-ranker`` end to end on temporary folder layouts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from rankers.cached import MODEL_KIND, CachedRankerConfig
from rankers.commands import rank_main
from rankers.train import TrainConfig, train
from rankers.train_commands import train_main
from sqa.checkpoint import export_release
from sqa.cli import main as sqa_main
from sqa.errors import SqaError
from sqa.fileio import read_rows
from sqa.synthetic import write_system_folders

SNR = {"s1": 30.0, "s2": 15.0, "s3": 5.0, "s4": -5.0}
MOS = {"s1": 4.5, "s2": 3.5, "s3": 2.5, "s4": 1.5}
TINY = CachedRankerConfig(
    n_mels=32, stem_channels=8, widths=(8, 8, 8, 8), embedding_size=16, head_hidden=16, dropout=0.0
)


def write_mos(path: Path, utterances: int) -> Path:
    lines = ["system_id,sample_id,mos"]
    lines += [
        f"{system},utt{index:03d},{MOS[system]}" for system in SNR for index in range(utterances)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def systems_without_reference(tmp_path: Path, utterances: int) -> Path:
    """System folders of ``SNR`` under ``tmp_path/systems`` with the reference folder removed."""
    write_system_folders(tmp_path / "systems", SNR, utterances, duration=0.5)
    shutil.rmtree(tmp_path / "systems" / "_reference")
    return tmp_path / "systems"


@pytest.fixture(scope="module")
def ranker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("train")
    write_system_folders(folder / "data", SNR, 8, duration=0.6)
    shutil.rmtree(folder / "data" / "_reference")
    settings = TrainConfig(
        data=str(folder / "data"),
        mos_csv=str(write_mos(folder / "mos.csv", 8)),
        output_dir=str(folder / "run"),
        validation_utterances=2,
        epochs=3,
        learning_rate=3e-3,
        keep_best=2,
        cache_audio=True,
    )
    return train(settings, TINY, MODEL_KIND)


def messy_layout(root: Path) -> Path:
    """Four systems; one missing file, one stereo 8 kHz system, a longer file, a corrupt file."""
    write_system_folders(root / "systems", SNR, 5, duration=0.6, seed=50)
    shutil.rmtree(root / "systems" / "_reference")
    systems = root / "systems"
    (systems / "s2" / "utt004.wav").unlink()
    for path in sorted((systems / "s3").glob("*.wav")):
        samples, rate = soundfile.read(path)
        stereo = np.stack([samples[::2], samples[::2]], axis=1)
        soundfile.write(path, stereo, rate // 2)
    samples, rate = soundfile.read(systems / "s1" / "utt000.wav")
    soundfile.write(systems / "s1" / "utt000.wav", np.concatenate([samples, samples[:800]]), rate)
    (systems / "s4" / "utt001.wav").write_bytes(b"RIFF not really a wav file")
    return systems


def test_rank_end_to_end_with_missing_and_broken_files(
    tmp_path: Path, ranker: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    systems = messy_layout(tmp_path)
    output = tmp_path / "ranking.csv"
    mos = write_mos(tmp_path / "human.csv", 5)
    arguments = ["--root", str(systems), "--ranker", str(ranker), "--output", str(output)]
    with pytest.warns(UserWarning) as caught:
        assert rank_main([*arguments, "--mos", str(mos), "--scoring", "bs", "--symmetric"]) == 0
    messages = " ".join(str(warning.message) for warning in caught)
    assert "utt004" in messages and "cropped to the shortest" in messages
    rows = read_rows(output)
    assert [row["system"] for row in rows] == ["s1", "s2", "s3", "s4"]
    assert [int(row["rank"]) for row in rows] == [1, 2, 3, 4]
    assert {"ecs_score", "win_rate", "predicted_mos", "rank_ci_low", "rank_ci_high"} <= set(rows[0])
    matrix = read_rows(tmp_path / "ranking_matrix.csv")
    assert [row["system"] for row in matrix] == ["s1", "s2", "s3", "s4"]
    assert float(matrix[0]["s2"]) + float(matrix[1]["s1"]) == pytest.approx(1.0)
    summary = json.loads((tmp_path / "ranking_summary.json").read_text())
    assert summary["skipped_utterances"] == ["utt001"] and summary["utterances"] == 3
    assert summary["missing"] == {"utt004": ["s2"]}
    assert summary["correlation_ecs"]["krcc"] == pytest.approx(1.0)
    captured = capsys.readouterr()
    assert "KRCC 1.000" in captured.out and "s4/utt001" in captured.err
    with pytest.raises(Exception, match="exists"):
        rank_main(arguments)


def test_rank_adaptive_and_noisy_modes(tmp_path: Path, ranker: Path) -> None:
    write_system_folders(tmp_path / "systems", SNR, 4, duration=0.6, seed=70)
    noisy = tmp_path / "systems" / "s4"
    output = tmp_path / "ranking.jsonl"
    arguments = ["--systems", *(str(tmp_path / "systems" / name) for name in SNR)]
    arguments += ["--ranker", str(ranker), "--output", str(output), "--noisy", str(noisy)]
    assert rank_main(arguments) == 0
    rows = read_rows(output)
    assert [row["system"] for row in rows] == list(SNR)
    noisy_mos = [row["predicted_mos_noisy"] for row in rows]
    assert all(np.isfinite(noisy_mos)) and noisy_mos[0] > noisy_mos[-1]
    assert rank_main([*arguments[:-2], "--adaptive", "--force"]) == 0
    summary = json.loads((tmp_path / "ranking_summary.json").read_text())
    assert 0 < summary["adaptive"]["comparisons"] <= summary["adaptive"]["full"] == 24


def test_rank_without_a_ranker_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "no_release").mkdir()
    monkeypatch.setenv("SQA_CHECKPOINT_DIR", str(tmp_path / "no_release"))
    write_system_folders(tmp_path / "systems", {"a": 10.0, "b": 0.0}, 1, duration=0.5)
    code = sqa_main(
        ["rank", "--root", str(tmp_path / "systems"), "--output", str(tmp_path / "r.csv")]
    )
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "no ranker given: pass --ranker" in error and len(error.splitlines()) == 1
    assert "no default ranker ('ranker-default') is installed" in error
    assert not (tmp_path / "r.csv").exists()


def test_rank_uses_the_installed_default_and_writes_per_file_scores(
    tmp_path: Path,
    ranker: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SQA_CHECKPOINT_DIR", str(tmp_path / "release"))
    export_release(ranker, tmp_path / "release" / "ranker-default.pt", name="ranker-default")
    write_system_folders(tmp_path / "systems", SNR, 3, duration=0.6, seed=80)
    shutil.rmtree(tmp_path / "systems" / "_reference")
    per_file = tmp_path / "per_file.csv"
    command = ["rank", "--root", str(tmp_path / "systems"), "--output", str(tmp_path / "r.csv")]
    assert sqa_main([*command, "--per-file", str(per_file)]) == 0
    assert "model ranker-default (the installed default" in capsys.readouterr().err
    rows = read_rows(per_file)
    assert sorted((row["system_id"], row["sample_id"]) for row in rows) == [
        (system, f"utt{index:03d}") for system in SNR for index in range(3)
    ]
    assert all(0.0 <= float(row["score"]) <= 1.0 for row in rows)
    assert all(np.isfinite(float(row["predicted_mos"])) for row in rows)
    human = write_mos(tmp_path / "human.csv", 3)
    agreement = ["agreement", "--human", str(human), "--human-column", "mos"]
    assert sqa_main([*agreement, "--scores", f"{per_file}:score", "--resamples", "20"]) == 0
    assert "12/12" in capsys.readouterr().out


def test_train_ranker_command_smoke(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    write_system_folders(tmp_path / "data", SNR, 4, duration=0.5)
    shutil.rmtree(tmp_path / "data" / "_reference")
    mos = write_mos(tmp_path / "mos.csv", 4)
    run = tmp_path / "run"
    common = ["--train", str(tmp_path / "data"), "--mos", str(mos), "--output-dir", str(run)]
    common += ["--model", "cached", "--max-steps-per-epoch", "1", "--validation-utterances", "1"]
    assert train_main([*common, "--epochs", "1", "--max-seconds", "0.25"]) == 0
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()
    assert (run / "config.yaml").is_file()
    with pytest.raises(SqaError, match="pass --resume to continue it or --force"):
        train_main([*common, "--epochs", "2"])
    assert train_main([*common, "--epochs", "2", "--resume"]) == 0
    from sqa.checkpoint import load_checkpoint

    assert load_checkpoint(run / "last.pt")["training_state"]["epoch"] == 2


def test_rank_by_ecs_over_scalar_scores(tmp_path: Path) -> None:
    systems_without_reference(tmp_path, 3)
    lines = ["system_id,sample_id,dnsmos_ovrl"]
    lines += [
        f"{system},utt{index:03d},{MOS[system] + 0.1 * index}"
        for system in SNR
        for index in range(3)
    ]
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n")
    output = tmp_path / "ranking.csv"
    arguments = ["--root", str(tmp_path / "systems"), "--scores", str(tmp_path / "scores.csv")]
    assert rank_main([*arguments, "--scoring", "bs", "--output", str(output)]) == 0
    rows = read_rows(output)
    assert [row["system"] for row in rows] == list(SNR)
    assert [float(row["win_rate"]) for row in rows] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])
    per_file = tmp_path / "per_file.jsonl"
    arguments += ["--output", str(output), "--per-file", str(per_file)]
    with pytest.raises(SqaError, match="exists"):
        rank_main(arguments)
    assert not per_file.exists()
    assert rank_main([*arguments, "--force"]) == 0
    rows = read_rows(per_file)
    assert len(rows) == 12 and "predicted_mos" not in rows[0]
    by_system = {row["system_id"]: row["score"] for row in rows if row["sample_id"] == "utt001"}
    assert by_system == pytest.approx({"s1": 1.0, "s2": 2 / 3, "s3": 1 / 3, "s4": 0.0})


def test_scalar_scores_join_on_utterance_id_when_sample_ids_are_unique(tmp_path: Path) -> None:
    # A ratings-style listing names each file by its own sample_id; the folders use the utterance.
    systems_without_reference(tmp_path, 2)
    lines = ["sample_id,system_id,utterance_id,dnsmos_ovrl"]
    lines += [
        f"{system}_{index},{system},utt{index:03d},{MOS[system]}"
        for system in SNR
        for index in range(2)
    ]
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n")
    output = tmp_path / "ranking.csv"
    arguments = ["--root", str(tmp_path / "systems"), "--scores", str(tmp_path / "scores.csv")]
    assert rank_main([*arguments, "--output", str(output)]) == 0
    assert [row["system"] for row in read_rows(output)] == list(SNR)
    summary = json.loads((tmp_path / "ranking_summary.json").read_text())
    assert summary["missing_scores"] == 0


def test_train_ranker_reads_a_config_file_and_set_overrides(tmp_path: Path) -> None:
    import yaml

    from sqa.configs import load_config, merge, parse_overrides

    settings = {"data": "d", "output_dir": "out", "epochs": 7, "model": "cached"}
    (tmp_path / "ranker.yaml").write_text(yaml.safe_dump(settings))
    # The file, then --set, then the flags (the CLI's order), for every trainer alike.
    flags = {"learning_rate": 0.01}
    config = load_config(
        tmp_path / "ranker.yaml", TrainConfig, merge(parse_overrides(["epochs=3"]), flags)
    )
    assert (config.epochs, config.learning_rate, config.model) == (3, 0.01, "cached")
    (tmp_path / "bad.yaml").write_text("epoch: 3\n")
    with pytest.raises(SqaError, match="bad.yaml: unknown field"):
        load_config(tmp_path / "bad.yaml", TrainConfig)


def test_mos_from_a_labelled_urgentpk_root(tmp_path: Path) -> None:
    from rankers.data import read_system_mos
    from sqa.data import AudioRecord, write_urgentpk

    wave = tmp_path / "a.wav"
    soundfile.write(wave, np.zeros(1600, dtype=np.float32) + 0.1, 16000)
    labels = {("good", "u1"): 4.0, ("good", "u2"): 3.0, ("bad", "u1"): 2.0, ("bad", "u2"): None}
    records = [
        AudioRecord(sample_id=utterance, system_id=team, path=str(wave), utterance_id=utterance,
                    metrics={} if mos is None else {"mos": mos})
        for (team, utterance), mos in labels.items()
    ]  # fmt: skip
    write_urgentpk(tmp_path / "pk", records, {"tr": ["u1"], "cv": ["u2"], "tt": []})
    assert read_system_mos(tmp_path / "pk") == {"good": 3.5, "bad": 2.0}  # missing label left out
    with pytest.raises(SqaError, match="no file has a 'dnsmos' label"):
        read_system_mos(tmp_path / "pk", "dnsmos")
