"""Seeding, environment information and run metadata."""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sqa import runs
from sqa.errors import SqaError


@dataclass(frozen=True)
class OptimiserConfig:
    """Nested part of the test config."""

    learning_rate: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)


@dataclass(frozen=True)
class RunConfig:
    """A config like the training commands resolve."""

    data: Path = Path("data/train.jsonl")
    seed: int = 3
    optimiser: OptimiserConfig = field(default_factory=OptimiserConfig)
    metrics: tuple[str, ...] = ("mos", "pesq")


def _draws() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_seed_everything_repeats_every_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    runs.seed_everything(11)
    first = _draws()
    assert os.environ["PYTHONHASHSEED"] == "11"
    runs.seed_everything(11)
    assert _draws() == first
    runs.seed_everything(12)
    assert _draws() != first
    for bad in (-1, 2**32, 1.5, "3", True):
        with pytest.raises(SqaError, match="seed"):
            runs.seed_everything(bad)  # type: ignore[arg-type]


def test_environment_info_is_json_ready() -> None:
    info = runs.environment_info()
    for key in ("python", "platform", "sqa", "torch", "numpy", "packages"):
        assert info[key], key
    assert info["torch"] == str(torch.__version__) and info["numpy"] == np.__version__
    assert info["git_commit"] is None or len(info["git_commit"]) == 40
    json.dumps(info)


def test_environment_info_without_git(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing_git(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(runs.subprocess, "run", missing_git)
    info = runs.environment_info()
    assert info["git_commit"] is None and info["git_dirty"] is None

    def failing_git(*args: object, **kwargs: object) -> None:
        raise subprocess.CalledProcessError(128, "git")

    monkeypatch.setattr(runs.subprocess, "run", failing_git)
    assert runs.git_state()["git_commit"] is None


def test_git_state_ignores_a_foreign_repository(tmp_path: Path) -> None:
    # A folder that is not the top of a repository reports nothing (never another repo's commit).
    assert runs.git_state(tmp_path) == {"git_commit": None, "git_dirty": None}


def test_write_run_metadata(tmp_path: Path) -> None:
    config = RunConfig()
    folder = runs.write_run_metadata(tmp_path / "run1", config)
    assert sorted(os.listdir(folder)) == ["config.yaml", "environment.json"]
    written = yaml.safe_load((folder / "config.yaml").read_text())
    assert written == {
        "data": "data/train.jsonl",
        "seed": 3,
        "optimiser": {"learning_rate": 1e-3, "betas": [0.9, 0.99]},
        "metrics": ["mos", "pesq"],
    }
    environment = json.loads((folder / "environment.json").read_text())
    assert environment["sqa"] and environment["created_utc"] and "argv" in environment
    namespace = argparse.Namespace(epochs=2, output=Path("out"))
    runs.write_run_metadata(folder, namespace)
    assert yaml.safe_load((folder / "config.yaml").read_text()) == {"epochs": 2, "output": "out"}


def test_run_lock_refuses_a_second_job_and_takes_over_stale_locks(tmp_path: Path) -> None:
    import socket
    import sys

    from sqa.runs import run_lock

    folder = tmp_path / "run"
    with run_lock(folder) as lock:
        assert lock.is_file()
        with pytest.raises(SqaError, match="in use by process"), run_lock(folder):
            pass
    assert not lock.exists()
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    lock.write_text(f"{finished.stdout.strip()} {socket.gethostname()}\n")  # its process is gone
    with run_lock(folder):
        assert lock.read_text().split()[0] != finished.stdout.strip()
