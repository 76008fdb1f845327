"""kill -9 and ``--resume`` for every trainer: the resumed run ends exactly as an uninterrupted one.

Each test trains a tiny run three times: in a subprocess that the test hook
``SQA_TEST_KILL_AFTER_STEP`` kills with SIGKILL (after update N is logged and before its checkpoint
is written, see :func:`sqa.runs.kill_point`), then resumed with ``--resume``, and uninterrupted
(these two in this process, on one thread like the subprocess: a Python start-up with torch costs
seconds). The final weights (every tensor, ``torch.equal``), optimiser, scheduler and generator
states and the log must be the same.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from sqa.runs import KILL_AFTER_STEP_VARIABLE
from sqa.synthetic import write_labelled_clips, write_system_folders

REPOSITORY = Path(__file__).resolve().parents[1]


def _killed(arguments: list[str], folder: Path, kill_after: int) -> None:
    """Run ``sqa ARGUMENTS`` in a subprocess that kills itself after update ``kill_after``."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1"}
    environment[KILL_AFTER_STEP_VARIABLE] = str(kill_after)
    result = subprocess.run(
        [sys.executable, "-m", "sqa", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
        env=environment,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]


def _sqa(arguments: list[str], folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``sqa ARGUMENTS`` in this process (in ``folder``, one thread); returns its stderr."""
    from sqa.cli import main

    threads, here = torch.get_num_threads(), Path.cwd()
    torch.set_num_threads(1)
    capsys.readouterr()
    try:
        os.chdir(folder)
        code = main(arguments)
    finally:
        os.chdir(here)
        torch.set_num_threads(threads)
    stderr = capsys.readouterr().err
    assert code == 0, stderr[-3000:]
    return stderr


def _payload(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _max_difference(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> float:
    assert first.keys() == second.keys()
    return max(
        (float((first[key].double() - second[key].double()).abs().max()) for key in first),
        default=0.0,
    )


def _assert_same_tensors(first: Any, second: Any, where: str = "") -> None:
    """Equal nested structures, tensors compared with ``torch.equal`` (bit for bit)."""
    if isinstance(first, torch.Tensor):
        assert isinstance(second, torch.Tensor) and torch.equal(first, second), where
    elif isinstance(first, dict):
        assert first.keys() == second.keys(), where
        for key in first:
            _assert_same_tensors(first[key], second[key], f"{where}.{key}")
    elif isinstance(first, (list, tuple)):
        assert len(first) == len(second), where
        for index, (a, b) in enumerate(zip(first, second, strict=True)):
            _assert_same_tensors(a, b, f"{where}[{index}]")
    else:
        assert first == second, where


def _log(path: Path, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [{key: value for key, value in row.items() if key not in drop} for row in rows]


def _assert_resumed_equals_uninterrupted(clean: Path, resumed: Path) -> float:
    """Compare the two runs' ``last.pt``; returns the largest weight difference (for reports)."""
    first, second = _payload(clean / "last.pt"), _payload(resumed / "last.pt")
    difference = _max_difference(first["state_dict"], second["state_dict"])
    _assert_same_tensors(first["state_dict"], second["state_dict"], "state_dict")
    keys = ("optimizer", "scheduler", "rng", "step", "epoch", "progress", "good_step")
    for key in (*keys, "guard_failures", "loader_generator"):
        if key in first["training_state"]:
            _assert_same_tensors(first["training_state"][key], second["training_state"][key], key)
    if "best" in first["training_state"]:  # the ranker's kept checkpoints: (loss, file)
        kept = [
            [(loss, Path(path).name) for loss, path in payload["training_state"]["best"]]
            for payload in (first, second)
        ]
        assert kept[0] == kept[1]
    assert not list(resumed.glob(".*.tmp"))  # no temporary file of a cut-short write is left
    return difference


def _stale_temporary(folder: Path) -> None:
    """What a process killed while writing a checkpoint leaves: a temporary never renamed."""
    (folder / ".last.pt.k1ll3d.tmp").write_bytes(b"\0" * 4096)


def test_predictor_resumed_after_kill_equals_an_uninterrupted_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_labelled_clips(tmp_path, 8)
    # 3 batches per epoch (0.3 s crops, 1 s per batch): last.pt at steps 2 and 4 (epoch 1, batch
    # 1), killed after step 6 is logged (train and validation rows) but before its checkpoint.
    common = [
        "train-predictor", "--train", "data.jsonl", "--valid", "data.jsonl", "--preset",
        "compact-mel", "--metrics", "mos", "--max-steps", "7", "--batch-seconds", "1",
        "--max-seconds", "0.3", "--valid-every", "2", "--threads", "1",
    ]  # fmt: skip
    _sqa([*common, "--output-dir", "clean"], tmp_path, capsys)
    _killed([*common, "--output-dir", "run"], tmp_path, 6)
    run = tmp_path / "run"
    assert _payload(run / "last.pt")["training_state"]["progress"]["step"] == 4
    assert max(row["step"] for row in _log(run / "log.jsonl")) == 6
    _stale_temporary(run)
    # As the README says: the run is rebuilt from run/config.yaml, no --train needed.
    _sqa(["train-predictor", "--resume", "--output-dir", "run"], tmp_path, capsys)
    difference = _assert_resumed_equals_uninterrupted(tmp_path / "clean", run)
    assert difference == 0.0
    assert _log(run / "log.jsonl") == _log(tmp_path / "clean" / "log.jsonl")  # no step twice
    _assert_same_tensors(
        _payload(run / "best.pt")["state_dict"],
        _payload(tmp_path / "clean" / "best.pt")["state_dict"],
    )


def test_a_full_disk_at_a_checkpoint_keeps_the_last_one_and_resume_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from sqa.cli import main

    write_labelled_clips(tmp_path, 8)
    common = [
        "train-predictor", "--train", "data.jsonl", "--valid", "data.jsonl", "--preset",
        "compact-mel", "--metrics", "mos", "--max-steps", "5", "--batch-seconds", "1",
        "--max-seconds", "0.3", "--valid-every", "2", "--threads", "1",
    ]  # fmt: skip
    _sqa([*common, "--output-dir", "clean"], tmp_path, capsys)
    real_fsync, checkpoints = os.fsync, []

    def fsync(descriptor: int) -> None:  # the disk fills up while last.pt of step 4 is written
        if os.readlink(f"/proc/self/fd/{descriptor}").startswith(str(tmp_path / "run" / ".last")):
            checkpoints.append(descriptor)
            if len(checkpoints) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main([*common, "--output-dir", "run"]) == 2
    monkeypatch.undo()
    error = capsys.readouterr().err
    assert "Traceback" not in error
    last_line = error.strip().splitlines()[-1]
    assert last_line.startswith("sqa train-predictor: error: ") and "No space left" in last_line
    run = tmp_path / "run"
    assert _payload(run / "last.pt")["training_state"]["progress"]["step"] == 2  # the one before
    assert not list(run.glob(".*.tmp"))
    _sqa(["train-predictor", "--resume", "--output-dir", "run"], tmp_path, capsys)
    assert _assert_resumed_equals_uninterrupted(tmp_path / "clean", run) == 0.0
    assert _log(run / "log.jsonl") == _log(tmp_path / "clean" / "log.jsonl")


def test_predictor_resume_and_force_follow_the_one_rule(tmp_path: Path) -> None:
    from sqa.commands.train_predictor import main
    from sqa.errors import SqaError

    with pytest.raises(SqaError, match="nothing to resume"):
        main(["--resume", "--output-dir", str(tmp_path / "none")])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"")
    (tmp_path / "run" / "config.yaml").write_text("train: [data.jsonl]\n")
    with pytest.raises(SqaError, match="give one of them"):
        main(["--resume", "--output-dir", str(tmp_path / "run"), "--force"])
    with pytest.raises(SqaError, match="give one of them"):  # the checkpoint's folder is the run
        main(["--resume", str(tmp_path / "run" / "last.pt"), "--force"])
    with pytest.raises(SqaError, match="pass --resume to continue it or --force"):
        main(["--train", "data.jsonl", "--output-dir", str(tmp_path / "run")])


def _epoch_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("epoch ")]


def test_ranker_resumed_after_kill_equals_an_uninterrupted_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_system_folders(tmp_path / "data", {"s1": 30.0, "s2": 15.0, "s3": 5.0}, 4, duration=0.5)
    mos = {"s1": 4.5, "s2": 3.0, "s3": 1.5}
    lines = [
        f"{system},utt{index:03d},{value}" for system, value in mos.items() for index in range(4)
    ]
    (tmp_path / "mos.csv").write_text("system_id,sample_id,mos\n" + "\n".join(lines) + "\n")
    # 2 updates per epoch: killed after update 5 (mid epoch 2), last.pt is that of epoch 1;
    # random crops (0.25 s), dropout and shuffling all depend on restored generator states.
    common = [
        "train-ranker", "--train", "data", "--mos", "mos.csv", "--model", "cached",
        "--epochs", "4", "--max-steps-per-epoch", "2", "--batch-size", "4",
        "--validation-utterances", "1", "--keep-best", "1", "--max-seconds", "0.25",
    ]  # fmt: skip
    clean = _sqa([*common, "--output-dir", "clean"], tmp_path, capsys)
    _killed([*common, "--output-dir", "run"], tmp_path, 5)
    run = tmp_path / "run"
    assert _payload(run / "last.pt")["training_state"]["epoch"] == 2
    _stale_temporary(run)
    resumed = _sqa(["train-ranker", "--resume", "--output-dir", "run"], tmp_path, capsys)
    assert _assert_resumed_equals_uninterrupted(tmp_path / "clean", run) == 0.0
    _assert_same_tensors(
        _payload(run / "best.pt")["state_dict"],
        _payload(tmp_path / "clean" / "best.pt")["state_dict"],
    )
    assert _epoch_lines(resumed) == _epoch_lines(clean)[2:]  # epochs 3 and 4
    assert sorted(path.name for path in run.glob("epoch*.pt")) == sorted(
        path.name for path in (tmp_path / "clean").glob("epoch*.pt")
    )


def test_finetune_resumed_after_kill_equals_an_uninterrupted_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    import yaml

    from se_finetune.bsrnn import BSRNN, BSRNNConfig
    from sqa.audio import save_audio
    from sqa.checkpoint import save_checkpoint
    from sqa.synthetic import speech_like

    rate = 16000
    for index in range(3):
        save_audio(tmp_path / "speech" / f"s{index}.wav", speech_like(0.5, rate, seed=index), rate)
        noise = 0.05 * np.random.default_rng(index).standard_normal(rate // 2)
        save_audio(tmp_path / "noise" / f"n{index}.wav", noise, rate)
    torch.manual_seed(0)
    restorer = BSRNN(BSRNNConfig(sample_rate=rate, num_channels=8, num_layers=1))
    save_checkpoint(tmp_path / "init.pt", restorer, restorer.config, kind="bsrnn")
    # An initial checkpoint turns the reward-hacking guard on (its state is resumed too); last.pt
    # every 2 steps, StepLR every 2 steps, killed after step 3 is logged.
    config = {
        "speech_dir": "speech", "noise_dir": "noise", "rir_dir": None, "holdout_every": 0,
        "init_checkpoint": "init.pt", "simulation": {"segment_seconds": 0.5}, "batch_size": 2,
        "steps": 4, "eval_count": 1, "eval_metrics": ["sdr"], "real_eval_metrics": [],
        "learning_rate": 1e-3, "checkpoint_interval": 2, "lr_step_size": 2, "guard_interval": 1,
        "guard_clips": 1,
    }  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    common = ["finetune", "--config", "config.yaml", "--threads", "1"]
    _sqa([*common, "--output-dir", "clean"], tmp_path, capsys)
    _killed([*common, "--output-dir", "run"], tmp_path, 3)
    run = tmp_path / "run"
    assert _payload(run / "last.pt")["training_state"]["step"] == 2
    assert [row["step"] for row in _log(run / "log.jsonl")] == [1, 2, 3]
    _stale_temporary(run)
    _sqa(["finetune", "--resume", "--output-dir", "run", "--threads", "1"], tmp_path, capsys)
    assert _assert_resumed_equals_uninterrupted(tmp_path / "clean", run) == 0.0
    _assert_same_tensors(  # the guard's last good weights
        _payload(run / "good.pt")["state_dict"],
        _payload(tmp_path / "clean" / "good.pt")["state_dict"],
    )
    timing = ("seconds",)  # wall time, the one thing that differs
    assert _log(run / "log.jsonl", drop=timing) == _log(tmp_path / "clean" / "log.jsonl", timing)
