"""Faults while writing (full disk, read-only or removed output folder) and stops (Ctrl-C,
SIGTERM) in the commands that write results.

The contract: one line on stderr naming the file, never a traceback, a non-zero exit, no temporary
or half-written output, and for ``sqa score`` a journal that ``--resume`` turns into exactly the
output of an uninterrupted run.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import test_input_listings as listings  # the corpus and the commands on it

from sqa.cli import main as sqa_main
from sqa.metrics import runner
from sqa.synthetic import write_labelled_clips, write_system_folders

ROOT = listings.ROOT
SYSTEMS = listings.SYSTEMS
predictor = listings.predictor  # fixtures shared with the listing tests
shipped_models = listings.shipped_models
_corpus, _command = listings.corpus, listings.audio_command


def _full_disk(monkeypatch: pytest.MonkeyPatch, fails: Callable[[str], bool]) -> None:
    """``fsync`` of the files chosen by path fails with ENOSPC, as on a full disk."""
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        if fails(os.readlink(f"/proc/self/fd/{descriptor}")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)


def _read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Opening a file for writing, or making a folder, below ``folder`` fails with EROFS."""
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
    base = str(folder.resolve())

    def refuse(path: object) -> None:
        if os.path.abspath(os.fspath(path)).startswith(base):  # type: ignore[arg-type]
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))  # type: ignore[arg-type]

    def guarded_open(
        file: object, mode: str = "r", *arguments: object, **options: object
    ) -> object:
        if isinstance(file, (str, os.PathLike)) and set(mode) & set("wax+"):
            refuse(file)
        return real_open(file, mode, *arguments, **options)

    def guarded_os_open(path: object, flags: int, *arguments: object, **options: object) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *arguments, **options)

    def guarded_mkdir(path: object, *arguments: object, **options: object) -> None:
        if not os.path.exists(os.fspath(path)):  # type: ignore[arg-type]
            refuse(path)
        real_mkdir(path, *arguments, **options)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)


def _train_command(tmp_path: Path) -> list[str]:
    write_labelled_clips(tmp_path / "clips", 2)
    data = str(tmp_path / "clips" / "data.jsonl")
    options = ["--preset", "compact-mel", "--metrics", "mos", "--max-steps", "1"]
    return [
        "train-predictor",
        "--train",
        data,
        "--valid",
        data,
        "--output-dir",
        str(tmp_path / "out" / "run"),
        *options,
    ]


FAULTS = {"ENOSPC": "No space left on device", "EROFS": "Read-only file system"}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("name", ["score", "predict", "rank", "enhance", "train-predictor"])
def test_a_full_disk_or_read_only_output_is_one_line_and_leaves_no_partial_file(
    tmp_path: Path,
    name: str,
    fault: str,
    predictor: Path,
    shipped_models: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "out"
    if name == "train-predictor":
        command = _train_command(tmp_path)
    else:
        command = _command(name, _corpus(tmp_path / "corpus", utterances=1), output, predictor)
    output.mkdir()
    if fault == "ENOSPC":
        _full_disk(monkeypatch, lambda path: path.startswith(str(output)))
    else:
        _read_only(monkeypatch, output)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = sqa_main(command)
    monkeypatch.undo()
    assert code == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    lines = [line for line in error.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0] == error.strip().splitlines()[-1]
    assert lines[0].startswith(f"sqa {name}: error: ") and FAULTS[fault] in lines[0]
    assert str(output) in lines[0]  # names the file that could not be written
    left = [path.name for path in output.rglob("*") if path.is_file()]
    assert not [item for item in left if item.endswith(".tmp")]
    assert not [item for item in left if item.rsplit(".", 1)[-1] in ("jsonl", "csv", "wav", "pt")]


def _score_arguments(root: Path, output: Path) -> list[str]:
    metrics = ["--metrics", "si_snr,lsd"]
    return ["score", "--root", str(root), "--ref-dir", str(root / "_reference"), *metrics,
            "-o", str(output), "--no-progress"]  # fmt: skip


def _score(root: Path, output: Path, *extra: str) -> int:
    return sqa_main([*_score_arguments(root, output), *extra])


@pytest.fixture
def scored(tmp_path: Path) -> tuple[Path, str]:
    """A corpus and the output of an uninterrupted ``sqa score`` run on it."""
    root = tmp_path / "corpus"
    write_system_folders(root, SYSTEMS, 3, duration=0.5)
    assert _score(root, tmp_path / "whole.jsonl") == 0
    return root, (tmp_path / "whole.jsonl").read_text()


@pytest.mark.parametrize("where", ["journal", "output"])
def test_score_after_a_full_disk_resumes_to_the_uninterrupted_output(
    tmp_path: Path,
    where: str,
    scored: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, whole = scored
    output = tmp_path / "out" / "scores.jsonl"
    appended: list[str] = []

    def fails(path: str) -> bool:
        if where == "output":
            return path.endswith(".tmp")
        appended.append(path)
        return path.endswith(".partial") and len(appended) == 3

    _full_disk(monkeypatch, fails)
    capsys.readouterr()
    assert _score(root, output) == 2
    monkeypatch.undo()
    error = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(error) and "No space left on device" in error[-1]
    assert "--resume" in error[-1] and ".partial" in error[-1]
    assert not output.exists() and not list(output.parent.glob("*.tmp"))
    assert _score(root, output, "--resume") == 0
    assert output.read_text() == whole
    assert not output.with_name("scores.jsonl.partial").exists()


def test_score_stops_with_one_line_when_its_output_folder_is_removed(
    tmp_path: Path, scored: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root, _ = scored
    output = tmp_path / "out" / "scores.jsonl"
    real_score_task, done = runner.score_task, []

    def score_then_remove(task: runner.ScoreTask) -> dict:
        done.append(task)
        if len(done) == 2:
            shutil.rmtree(output.parent)
        return real_score_task(task)

    monkeypatch.setattr(runner, "score_task", score_then_remove)
    capsys.readouterr()
    assert _score(root, output, "--jobs", "0") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(error)
    assert error[-1].startswith("sqa score: error: cannot write") and "deleted" in error[-1]
    assert len(done) == 2  # stopped at once, not after scoring everything


def test_ctrl_c_in_score_keeps_a_journal_that_resume_completes(
    tmp_path: Path, scored: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root, whole = scored
    output = tmp_path / "scores.jsonl"
    real_score_task, done = runner.score_task, []

    def interrupted(task: runner.ScoreTask) -> dict:
        done.append(task)
        if len(done) == 3:
            raise KeyboardInterrupt
        return real_score_task(task)

    monkeypatch.setattr(runner, "score_task", interrupted)
    capsys.readouterr()
    assert _score(root, output, "--jobs", "0") == 130
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("sqa score: interrupted; 2 of 6 file(s) are kept in")
    assert line.endswith("rerun the same command with --resume to continue")
    monkeypatch.undo()
    assert _score(root, output, "--resume") == 0 and output.read_text() == whole


# Found through PYTHONPATH by every process of the run: the scoring worker reads slowly, which
# leaves time to send the signal while files are being scored.
SLOW_WORKER_SITECUSTOMIZE = """
import multiprocessing, time
import soundfile

_read = soundfile.read

def _slow_read(*args, **kwargs):
    if multiprocessing.current_process().name != "MainProcess":
        time.sleep(0.2)
    return _read(*args, **kwargs)

soundfile.read = _slow_read
"""


def test_sigterm_stops_score_cleanly_and_resume_completes(
    tmp_path: Path, scored: tuple[Path, str]
) -> None:
    root, whole = scored
    output = tmp_path / "scores.jsonl"
    journal = output.with_name("scores.jsonl.partial")
    arguments = _score_arguments(root, output)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_WORKER_SITECUSTOMIZE)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), str(ROOT)])}
    process = subprocess.Popen(
        [sys.executable, "-m", "sqa", *arguments],
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    deadline = time.monotonic() + 60
    while not (journal.exists() and len(journal.read_text().splitlines()) >= 2):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 143
    assert "Traceback" not in error
    assert "sqa score: interrupted;" in error and "--resume to continue" in error
    assert journal.exists() and not output.exists()
    assert _score(root, output, "--resume") == 0 and output.read_text() == whole
