"""One process-group rule for every trainer: devices per LOCAL_RANK, and 2-process gloo DDP runs of
``sqa train-ranker`` and ``sqa train-predictor`` launched by torchrun on CPU."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sqa.distributed import distributed_context
from sqa.synthetic import write_labelled_clips, write_system_folders


def test_each_process_takes_the_gpu_of_its_local_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen: list[str] = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    context = distributed_context("cuda")
    assert (context.rank, context.world_size, context.device) == (1, 2, "cuda:1")
    assert chosen == ["cuda:1"]  # not every process on cuda:0
    assert distributed_context("cpu").device == "cpu"  # a CPU run keeps its device
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed_context("cuda:0") == distributed_context("cuda:0").__class__(0, 1, "cuda:0")


def _torchrun(arguments: list[str], folder: Path) -> str:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "sqa",
        *arguments,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=folder)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


def test_ranker_trains_with_two_gloo_processes(tmp_path: Path) -> None:
    write_system_folders(tmp_path / "data", {"s1": 30.0, "s2": 15.0, "s3": 5.0}, 6, duration=0.4)
    shutil.rmtree(tmp_path / "data" / "_reference")
    mos = {"s1": 4.5, "s2": 3.0, "s3": 1.5}
    lines = [
        f"{system},utt{index:03d},{value}" for system, value in mos.items() for index in range(6)
    ]
    (tmp_path / "mos.csv").write_text("system_id,sample_id,mos\n" + "\n".join(lines) + "\n")
    output = _torchrun(
        [
            "train-ranker",
            "--train",
            "data",
            "--mos",
            "mos.csv",
            "--output-dir",
            "run",
            "--model",
            "cached",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--validation-utterances",
            "2",
            "--keep-best",
            "1",
        ],
        tmp_path,
    )
    assert output.count("best checkpoint:") == 2  # both ranks finished
    assert output.count("epoch 2/2") == 1  # only rank 0 logs and writes
    assert {"best.pt", "last.pt", "config.yaml", "environment.json"} <= {
        path.name for path in (tmp_path / "run").iterdir()
    }


def test_predictor_trains_with_two_gloo_processes(tmp_path: Path) -> None:
    write_labelled_clips(tmp_path, 8)
    output = _torchrun(
        [
            "train-predictor",
            "--train",
            "data.jsonl",
            "--valid",
            "data.jsonl",
            "--output-dir",
            "run",
            "--preset",
            "compact-mel",
            "--metrics",
            "mos",
            "--max-steps",
            "4",
            "--batch-seconds",
            "2",
            "--valid-every",
            "2",
        ],
        tmp_path,
    )
    assert "4 steps" in output
    assert {"best.pt", "last.pt", "log.jsonl", "config.yaml"} <= {
        path.name for path in (tmp_path / "run").iterdir()
    }


def test_restorer_finetunes_with_two_gloo_processes(tmp_path: Path) -> None:
    import json

    import numpy as np
    import yaml

    from sqa.audio import save_audio
    from sqa.synthetic import speech_like

    rate = 16000
    for index in range(3):
        save_audio(tmp_path / "speech" / f"s{index}.wav", speech_like(0.5, rate, seed=index), rate)
        noise = 0.05 * np.random.default_rng(index).standard_normal(rate // 2)
        save_audio(tmp_path / "noise" / f"n{index}.wav", noise, rate)
    config = {
        "output_dir": "run", "speech_dir": "speech", "noise_dir": "noise", "rir_dir": None,
        "holdout_every": 0, "model": {"sample_rate": rate, "num_channels": 8, "num_layers": 1},
        "simulation": {"segment_seconds": 0.5}, "batch_size": 4, "steps": 2, "eval_count": 1,
        "eval_metrics": ["sdr"], "real_eval_metrics": [], "learning_rate": 1e-3,
    }  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    _torchrun(["finetune", "--config", "config.yaml"], tmp_path)
    run = tmp_path / "run"
    assert {"last.pt", "log.jsonl", "config.yaml", "environment.json", "summary.json"} <= {
        path.name for path in run.iterdir()
    }
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2]  # one writer: rank 0 logs each step once
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"
