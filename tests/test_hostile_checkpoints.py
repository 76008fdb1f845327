"""Hostile model files: pickles that would run code, foreign pickles, bent checkpoints (issue 13).

Every option that takes a model, checkpoint, resume or weights path gets the same hostile files;
nothing in them may run, and the user gets one line of ours (never torch's advice to switch the
weights-only protection off).
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sqa.audio import save_audio
from sqa.checkpoint import file_sha256, load_checkpoint, save_checkpoint, update_manifest
from sqa.cli import main as sqa_main
from sqa.data import AudioRecord, write_track2_jsonl
from sqa.predictors import MODEL_KIND, TrunkConfig, UniVersa, UniVersaConfig
from sqa.synthetic import speech_like, write_labelled_clips, write_system_folders

TINY = TrunkConfig(num_layers=1, num_heads=2, d_model=16, ffn_dim=32, dropout=0.0)
ADVICE = ("weights_only=False", "`weights_only` set to `False`", "weights_only")


class _RunsCode:
    """Unpickling this calls os.system (the classic malicious checkpoint)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


class _Foreign:
    """An arbitrary class: a pickle of it needs the class, which weights-only loading refuses."""


def _hostile_files(folder: Path, marker: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "torch-runs-code": folder / "torch_code.pt",
        "pickle-runs-code": folder / "pickle_code.pkl",
        "torch-object": folder / "torch_object.pt",
        "plain-pickle": folder / "plain.pkl",
    }
    torch.save({"format_version": 1, "payload": _RunsCode(marker)}, files["torch-runs-code"])
    with open(files["pickle-runs-code"], "wb") as stream:
        pickle.dump(_RunsCode(marker), stream, protocol=2)
    torch.save({"model": _Foreign()}, files["torch-object"])
    with open(files["plain-pickle"], "wb") as stream:
        pickle.dump({"weights": [1.0, 2.0]}, stream)
    return files


def _predictor(path: Path, metrics: tuple[str, ...] = ("mos",), **extra: object) -> Path:
    torch.manual_seed(0)
    model = UniVersa(UniVersaConfig(front_end="mel", trunk=TINY, metrics=metrics, **extra))
    return save_checkpoint(path, model, model.config, kind=MODEL_KIND)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Audio, listings and configs every command below needs (built once)."""
    root = tmp_path_factory.mktemp("corpus")
    for index in range(2):
        save_audio(root / "wavs" / f"s{index}.wav", speech_like(0.6, 16000, index), 16000)
        noise = 0.05 * np.random.default_rng(index).standard_normal(8000)
        save_audio(root / "noise" / f"n{index}.wav", noise, 16000)
    records = [AudioRecord(f"s{i}", "sys", str(root / "wavs" / f"s{i}.wav")) for i in range(2)]
    write_track2_jsonl(root / "data.jsonl", records)
    (root / "README.yaml").write_text("team: t\n")
    write_labelled_clips(root / "labelled", 4)
    write_system_folders(root / "systems", {"a": 20.0, "b": 5.0}, 2, duration=0.4)
    shutil.rmtree(root / "systems" / "_reference")
    lines = [f"{system},utt{index:03d},{mos}" for system, mos in (("a", 4.5), ("b", 1.5))
             for index in range(2)]  # fmt: skip
    (root / "mos.csv").write_text("system_id,sample_id,mos\n" + "\n".join(lines) + "\n")
    return root


def _finetune_config(corpus: Path, folder: Path, field: str, value: str) -> list[str]:
    config = {
        "output_dir": str(folder / "run"), "speech_dir": str(corpus / "wavs"),
        "noise_dir": str(corpus / "noise"), "rir_dir": None, "holdout_every": 0,
        "model": {"sample_rate": 16000, "num_channels": 8, "num_layers": 1},
        "simulation": {"segment_seconds": 0.5}, "batch_size": 2, "steps": 1, "eval_count": 1,
        "eval_metrics": ["sdr"], "real_eval_metrics": [], field: value,
    }  # fmt: skip
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return ["finetune", "--config", str(folder / "config.yaml")]


def _command(option: str, model: Path, corpus: Path, folder: Path) -> list[str]:
    """The command line that hands ``model`` to ``option``."""
    wavs, out = str(corpus / "wavs"), str(folder / "out")
    if option == "train-ranker resume":
        (folder / "run").mkdir(exist_ok=True)
        (folder / "run" / "last.pt").write_bytes(model.read_bytes())
        return ["train-ranker", "--train", str(corpus / "systems"), "--output-dir",
                str(folder / "run"), "--mos", str(corpus / "mos.csv"), "--model", "cached",
                "--epochs", "1", "--resume"]  # fmt: skip
    if option == "checkpoint verify":  # the caller points SQA_CHECKPOINT_DIR at ``folder``
        update_manifest("hostile", {"file": str(model), "sha256": file_sha256(model),
                                    "kind": MODEL_KIND}, folder)  # fmt: skip
        return ["checkpoint", "verify"]
    if option.startswith("finetune "):
        return _finetune_config(corpus, folder, option.split()[1], str(model))
    lines = {
        "predict --checkpoint": ["predict", "--checkpoint", str(model), "--dir", wavs,
                                 "--output", f"{out}.jsonl", "--no-progress"],
        "rank --ranker": ["rank", "--ranker", str(model), "--systems", str(corpus / "systems"),
                          "--output", f"{out}.csv", "--no-progress"],
        "enhance --model": ["enhance", "--model", str(model), "--dir", wavs, "--output", out],
        "train-predictor --resume": ["train-predictor", "--train",
                                     str(corpus / "labelled" / "data.jsonl"), "--output-dir",
                                     str(folder / "run"), "--preset", "compact-mel", "--metrics",
                                     "mos", "--max-steps", "1", "--resume", str(model)],
        "checkpoint info": ["checkpoint", "info", str(model)],
        "checkpoint export": ["checkpoint", "export", str(model), f"{out}.pt"],
        "track2 submit --checkpoint": ["track2", "submit", "--checkpoint", str(model), "--data",
                                       str(corpus / "data.jsonl"), "--readme",
                                       str(corpus / "README.yaml"), "--output", f"{out}.zip"],
        "track2 template --checkpoint": ["track2", "template", "--checkpoint", str(model),
                                         "--output", f"{out}.yaml"],
        "score --nisqa-weights": ["score", "--dir", wavs, "--metrics", "nisqa_mos",
                                  "--nisqa-weights", str(model), "--output", f"{out}.jsonl",
                                  "--no-progress"],
    }  # fmt: skip
    return lines[option]


OPTIONS = (
    "predict --checkpoint", "rank --ranker", "enhance --model", "finetune init_checkpoint",
    "finetune critic", "finetune ranker", "train-predictor --resume", "train-ranker resume",
    "checkpoint info", "checkpoint verify", "checkpoint export", "track2 submit --checkpoint",
    "track2 template --checkpoint", "score --nisqa-weights",
)  # fmt: skip


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and not any(advice in err for advice in ADVICE), err
    errors = [line for line in lines if ": error: " in line or line.startswith("FAIL")]
    assert len(errors) == 1, err
    ours = ("sqa ", "FAIL", "ok ")  # every line is ours: no torch warning, no traceback
    assert all(line.startswith(ours) or "verified" in line for line in lines), err
    return errors[0]


@pytest.mark.parametrize("option", OPTIONS)
def test_no_hostile_pickle_runs_and_each_is_one_line(
    option: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    marker = tmp_path / "MARKER"
    for label, hostile in _hostile_files(tmp_path / "hostile", marker).items():
        folder = tmp_path / label
        folder.mkdir()
        monkeypatch.setenv("SQA_CHECKPOINT_DIR", str(folder))  # no installed defaults leak in
        code = sqa_main(_command(option, hostile, corpus, folder))
        captured = capsys.readouterr()
        line = _one_error_line(captured.out + captured.err)  # verify reports on stdout
        assert code != 0, (label, line)
        assert not marker.exists(), f"{label} ran code through {option}"
        assert str(hostile) in line or "hostile" in line, line
        assert "refusing to load" in line or "not a readable checkpoint" in line, line
        assert not (folder / "out.jsonl.partial").exists()  # --nisqa-weights left one before


def test_a_refused_pickle_names_the_code_it_would_have_run(tmp_path: Path) -> None:
    files = _hostile_files(tmp_path, tmp_path / "MARKER")
    with pytest.raises(Exception, match=r"refusing to load .*posix\.system.*never runs"):
        load_checkpoint(files["torch-runs-code"])
    with pytest.raises(Exception, match=r"refusing to load .*_Foreign"):
        load_checkpoint(files["torch-object"])
    assert not (tmp_path / "MARKER").exists()


def _bent(good: Path, folder: Path, case: str) -> Path:
    """A copy of a valid predictor checkpoint with one thing wrong."""
    payload = load_checkpoint(good)
    config = dict(payload["config"])
    if case == "format_version":
        payload["format_version"] = 99
    elif case == "kind":
        payload["kind"] = "no_such_kind"
    elif case == "tensor shapes":
        payload["state_dict"] = {k: v.flatten()[:1] for k, v in payload["state_dict"].items()}
    elif case == "config field type":
        config["sample_rate"] = "sixteen thousand"
    elif case == "nested config type":
        config["mel"] = {**config["mel"], "n_mels": 80.5}
    elif case == "unknown SSL architecture":
        config["front_end"] = "ssl"
        config["ssl"] = {**config["ssl"], "architecture": '{"model_type": "no_such_model"}'}
    payload["config"] = config
    path = folder / f"{case.replace(' ', '_')}.pt"
    torch.save(payload, path)
    return path


BENT = {
    "format_version": "format_version 99",
    "kind": "'no_such_kind'",
    "tensor shapes": "of the wrong shape",
    "config field type": "UniVersaConfig.sample_rate must be an integer",
    "nested config type": "n_mels must be an integer",
    "unknown SSL architecture": "cannot build a 'universa' model",
    "sha256": "sha256 mismatch",
}


@pytest.mark.parametrize("case", list(BENT))
def test_bent_checkpoints_are_one_clear_line(
    case: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("SQA_CHECKPOINT_DIR", str(tmp_path))
    good = _predictor(tmp_path / "good.pt")
    if case == "sha256":
        model = "listed"
        entry = {"file": "good.pt", "sha256": "0" * 64, "kind": MODEL_KIND}
        update_manifest(model, entry, tmp_path)
    else:
        model = str(_bent(good, tmp_path, case))
    output = tmp_path / "out.jsonl"
    arguments = ["--dir", str(corpus / "wavs"), "--output", str(output), "--no-progress"]
    assert sqa_main(["predict", "--checkpoint", model, *arguments]) == 2
    assert BENT[case] in _one_error_line(capsys.readouterr().err)
    assert not output.exists()


def test_a_command_names_the_kind_it_got_and_the_kind_it_needs(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predictor = _predictor(tmp_path / "predictor.pt")
    out = str(tmp_path / "out")
    enhance = ["enhance", "--model", str(predictor), "--dir", str(corpus / "wavs"), "--output", out]
    rank = ["rank", "--ranker", str(predictor), "--systems", str(corpus / "systems"), "--output",
            f"{out}.csv"]  # fmt: skip
    commands = {
        "needs a restorer checkpoint (kind 'bsrnn')": enhance,
        "needs a pairwise ranker checkpoint (kind 'urgent_pk'": rank,
    }
    for needed, command in commands.items():
        assert sqa_main(command) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "is a 'universa' (multi-metric predictor) checkpoint" in line and needed in line
    assert not Path(out).exists()


@pytest.mark.parametrize("name", ["ABSOLUTE", "x\\y", "a b"])
def test_a_metric_name_that_is_a_path_writes_nothing(
    name: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = str(tmp_path / "escaped") if name == "ABSOLUTE" else name  # no "." allowed in heads
    extra = {
        "metric_ranges": ((name, 1.0, 5.0),),
        "metric_directions": ((name, True),),
        "metric_groups": ((name, "perceptual"),),
    }
    model = _predictor(tmp_path / "model.pt", (name,), **extra)
    scp_dir = tmp_path / "out" / "scp"
    command = ["predict", "--checkpoint", str(model), "--dir", str(corpus / "wavs"),
               "--output", str(tmp_path / "out" / "p.jsonl"), "--scp-dir", str(scp_dir),
               "--no-progress"]  # fmt: skip
    assert sqa_main(command) == 2
    assert "is not a plain name" in _one_error_line(capsys.readouterr().err)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.pt"]  # no escaped.scp


def test_the_ranker_kinds_are_every_registered_ranker() -> None:
    import rankers.cached
    import rankers.model
    import rankers.quality
    from rankers.loading import RANKER_KINDS

    kinds = {rankers.model.MODEL_KIND, rankers.quality.MODEL_KIND, rankers.cached.MODEL_KIND}
    assert set(RANKER_KINDS) == kinds
